#!/usr/bin/env python3
"""A minimal Python client of lorad: generates the gRPC stubs from proto/ at run time
(grpc_tools.protoc into a temporary directory), then calls lorad.v1.Inference.

  python3 client.py [--addr HOST:PORT] [--token T] [--tls_ca PEM] generate [--stream]
                    [--adapter ID] [--max_new_tokens N] [--temperature T] [--top_p P]
                    [--top_k K] [--seed S] [--stop S ...] [--chat] PROMPT
  python3 client.py [--addr HOST:PORT] tokenize TEXT

Needs `pip install grpcio grpcio-tools`. Exit codes: 0 ok, 1 RPC error (code and message on
stderr), 2 usage.
"""

import argparse
import importlib
import os
import sys
import tempfile

PROTO_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "proto")
PROTO_FILES = ["lorad/v1/common.proto", "lorad/v1/inference.proto"]


def load_stubs(proto_root=PROTO_ROOT):
    """Compiles the lorad.v1 protos into a temp dir and returns (inference_pb2, inference_pb2_grpc)."""
    from grpc_tools import protoc  # pylint: disable=import-outside-toplevel
    import grpc_tools  # pylint: disable=import-outside-toplevel

    out_dir = tempfile.mkdtemp(prefix="lorad_stubs_")
    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    args = ["protoc", f"-I{proto_root}", f"-I{well_known}", f"--python_out={out_dir}",
            f"--grpc_python_out={out_dir}"] + PROTO_FILES
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {proto_root}")
    sys.path.insert(0, out_dir)
    return (importlib.import_module("lorad.v1.inference_pb2"),
            importlib.import_module("lorad.v1.inference_pb2_grpc"))


def make_channel(grpc, addr, tls_ca):
    if not tls_ca:
        return grpc.insecure_channel(addr)
    with open(tls_ca, "rb") as f:
        return grpc.secure_channel(addr, grpc.ssl_channel_credentials(root_certificates=f.read()))


def build_request(pb2, args):
    request = pb2.GenerateRequest(adapter_id=args.adapter)
    if args.chat:
        request.messages.messages.add(role="user", content=args.prompt)
    else:
        request.prompt = args.prompt
    s = request.sampling
    s.max_new_tokens = args.max_new_tokens
    s.temperature = args.temperature
    s.top_p = args.top_p
    s.top_k = args.top_k
    if args.seed is not None:
        s.seed = args.seed
    s.stop.extend(args.stop)
    return request


def main(argv=None):
    parser = argparse.ArgumentParser(description="lorad Python client")
    parser.add_argument("--addr", default="127.0.0.1:50051")
    parser.add_argument("--token", default="", help="bearer token")
    parser.add_argument("--tls_ca", default="", help="PEM root certificates; dial with TLS")
    parser.add_argument("--timeout_s", type=float, default=600)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate")
    gen.add_argument("prompt")
    gen.add_argument("--stream", action="store_true", help="use GenerateStream")
    gen.add_argument("--chat", action="store_true", help="send the prompt as a user message")
    gen.add_argument("--adapter", default="")
    gen.add_argument("--max_new_tokens", type=int, default=0)
    gen.add_argument("--temperature", type=float, default=0.0)
    gen.add_argument("--top_p", type=float, default=0.0)
    gen.add_argument("--top_k", type=int, default=0)
    gen.add_argument("--seed", type=int, default=None)
    gen.add_argument("--stop", action="append", default=[])
    tok = sub.add_parser("tokenize")
    tok.add_argument("text")
    args = parser.parse_args(argv)

    import grpc  # pylint: disable=import-outside-toplevel
    pb2, pb2_grpc = load_stubs()
    finish_name = importlib.import_module("lorad.v1.common_pb2").FinishReason.Name
    stub = pb2_grpc.InferenceStub(make_channel(grpc, args.addr, args.tls_ca))
    metadata = [("authorization", f"Bearer {args.token}")] if args.token else []
    if getattr(args, "adapter", ""):
        # The adapter-affinity header: a router in front of several replicas hashes on it.
        metadata.append(("x-lorad-adapter", args.adapter))
    try:
        if args.command == "tokenize":
            response = stub.Tokenize(pb2.TokenizeRequest(text=args.text), metadata=metadata,
                                     timeout=args.timeout_s)
            print(" ".join(str(i) for i in response.token_ids))
        elif args.stream:
            last = None
            for message in stub.GenerateStream(build_request(pb2, args), metadata=metadata,
                                               timeout=args.timeout_s):
                sys.stdout.write(message.text)
                sys.stdout.flush()
                last = message
            sys.stdout.write("\n")
            print(f"finish_reason={finish_name(last.finish_reason)} "
                  f"completion_tokens={last.usage.completion_tokens}", file=sys.stderr)
        else:
            response = stub.Generate(build_request(pb2, args), metadata=metadata,
                                     timeout=args.timeout_s)
            print(response.text)
            print(f"finish_reason={finish_name(response.finish_reason)} "
                  f"completion_tokens={response.usage.completion_tokens}", file=sys.stderr)
    except grpc.RpcError as error:
        print(f"client.py: {error.code().name}: {error.details()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
