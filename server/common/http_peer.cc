#include "server/common/http_peer.h"

#include <dirent.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <cstring>

#include "httplib.h"
#include "openssl/ssl.h"

namespace lorad::server {
namespace {

// The numeric host and the port of `addr`, as cpp-httplib formats Request::remote_addr and
// local_addr (getnameinfo with NI_NUMERICHOST).
bool HostAndPort(const sockaddr_storage& addr, socklen_t len, std::string* host, int* port) {
  char buf[NI_MAXHOST];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&addr), len, buf, sizeof(buf), nullptr, 0,
                  NI_NUMERICHOST) != 0) {
    return false;
  }
  *host = buf;
  if (addr.ss_family == AF_INET) {
    *port = ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    *port = ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port);
  } else {
    return false;
  }
  return true;
}

// Whether `fd` is a socket connected from (local_addr, local_port) to (remote_addr,
// remote_port). The ports are compared first: most descriptors fail there.
bool IsConnection(int fd, const std::string& local_addr, int local_port,
                  const std::string& remote_addr, int remote_port) {
  sockaddr_storage addr;
  socklen_t len = sizeof(addr);
  std::string host;
  int port = -1;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return false;
  if (!HostAndPort(addr, len, &host, &port) || port != local_port || host != local_addr) {
    return false;
  }
  len = sizeof(addr);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return false;
  return HostAndPort(addr, len, &host, &port) && port == remote_port && host == remote_addr;
}

}  // namespace

HttpPeer::HttpPeer(const httplib::Request& request)
    : local_addr_(request.local_addr),
      remote_addr_(request.remote_addr),
      local_port_(request.local_port),
      remote_port_(request.remote_port),
      ssl_(request.ssl) {}

int HttpPeer::fd() {
  if (searched_) return fd_;
  searched_ = true;
  if (ssl_ != nullptr) {
    fd_ = SSL_get_fd(static_cast<const SSL*>(ssl_));
    return fd_;
  }
  if (local_port_ < 0 || remote_port_ < 0) return fd_;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return fd_;
  const int dir_fd = dirfd(dir);
  while (dirent* entry = readdir(dir)) {
    char* end = nullptr;
    const long fd = strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || fd == dir_fd) continue;
    if (IsConnection(static_cast<int>(fd), local_addr_, local_port_, remote_addr_, remote_port_)) {
      fd_ = static_cast<int>(fd);
      break;
    }
  }
  closedir(dir);
  return fd_;
}

bool HttpPeer::Gone() {
  const int socket = fd();
  if (socket < 0) return false;
  pollfd p{};
  p.fd = socket;
  p.events = POLLRDHUP;
  if (poll(&p, 1, 0) != 1) return false;
  return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

}  // namespace lorad::server
