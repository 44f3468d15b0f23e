"""``python -m mangaroute.sidecar.probe [ADDR]``: exit 0 when the sidecar reports SERVING.

For container health checks (an ECS ``healthCheck`` command, a Kubernetes ``exec`` probe)
in the sidecar's own image, where no ``grpc_health_probe`` binary is installed. Checks the
overall status (service ``""``) over plaintext; exits 1 for NOT_SERVING, 2 when the sidecar
cannot be reached in ``--timeout-s``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mangaroute.sidecar.address import parse_listen


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mangaroute.sidecar.probe")
    parser.add_argument("address", nargs="?", help="as for serve --listen (default: its default)")
    parser.add_argument("--timeout-s", type=float, default=2.0)
    args = parser.parse_args(argv)
    target = parse_listen(args.address).target
    with grpc.insecure_channel(target) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=args.timeout_s
            )
        except grpc.RpcError as exc:
            print(f"{target}: {exc.code().name} {exc.details()}", file=sys.stderr)
            return 2
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"{target}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    raise SystemExit(main())
