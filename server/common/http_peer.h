// Whether the client behind a cpp-httplib request is still connected, so a reply that is still
// being computed (a queued or generating request) can be cancelled when its client goes away.
// cpp-httplib 0.11 (Debian 12) has no such query and does not hand handlers their socket: the
// socket is found once, on first use, as the one whose local and peer addresses are the
// request's (a TCP connection's address pair is unique), or from the request's TLS session.
// Thread-safety: one HttpPeer per request, used by the thread serving it. The socket stays open
// while that thread serves the request (handler and content provider), so the found descriptor
// cannot be reused under it.
#pragma once

#include <string>

namespace httplib {
struct Request;
}

namespace lorad::server {

class HttpPeer {
 public:
  explicit HttpPeer(const httplib::Request& request);

  // True once the client has shut down its side of the connection, or the connection failed.
  // False while it is open, and when its socket cannot be found (the caller then learns of a
  // gone client only from a failed write).
  bool Gone();

  // The connection's socket descriptor, -1 when none matches.
  int fd();

 private:
  std::string local_addr_, remote_addr_;
  int local_port_, remote_port_;
  const void* ssl_ = nullptr;  // the request's SSL session, under HTTPS
  bool searched_ = false;
  int fd_ = -1;
};

}  // namespace lorad::server
