#!/usr/bin/env python3
"""Wire-compatibility check of the Liner registry with a non-Rust gRPC stack.

Usage: grpc_compat.py HOST:PORT

Installs grpcio + grpcio-tools into a venv under target/ when missing (exit code 3
when that is impossible, so a caller can skip), compiles proto/discovery/v1 with
grpc_tools.protoc, then against the running registry: registers an instance, sees
it in List and in a Watch stream, heartbeats (including re-registration of an
unknown lease), checks grpc.health.v1.Health, deregisters and sees the removal.
Exit code 0 = compatible, 1 = a check failed.
"""

import os
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
VENV = os.path.join(ROOT, "target", "grpc-compat-venv")
VENV_PY = os.path.join(VENV, "bin", "python3")
CANNOT_INSTALL = 3

HEALTH_PROTO = """
syntax = "proto3";
package grpc.health.v1;
message HealthCheckRequest { string service = 1; }
message HealthCheckResponse {
  enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; }
  ServingStatus status = 1;
}
service Health {
  rpc Check(HealthCheckRequest) returns (HealthCheckResponse);
}
"""


def ensure_venv():
    """Re-runs this script inside a venv that has grpcio, creating it if needed."""
    if os.path.abspath(sys.prefix) == os.path.abspath(VENV):
        return
    if not os.path.exists(VENV_PY) or subprocess.call(
        [VENV_PY, "-c", "import grpc, grpc_tools"], stderr=subprocess.DEVNULL
    ) != 0:
        print("installing grpcio + grpcio-tools into", VENV, flush=True)
        try:
            subprocess.check_call([sys.executable, "-m", "venv", VENV])
            subprocess.check_call(
                [VENV_PY, "-m", "pip", "install", "--quiet", "grpcio", "grpcio-tools"],
                timeout=600,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
            print(f"SKIP: cannot install grpcio ({e})", flush=True)
            sys.exit(CANNOT_INSTALL)
    os.execv(VENV_PY, [VENV_PY, __file__] + sys.argv[1:])


def compile_protos(out):
    from grpc_tools import protoc

    # The file path (not the proto package) names the Python module: keep it away
    # from grpcio's own `grpc` package.
    health_dir = os.path.join(out, "src")
    os.makedirs(os.path.join(health_dir, "liner_health"))
    with open(os.path.join(health_dir, "liner_health", "health.proto"), "w") as f:
        f.write(HEALTH_PROTO)
    for include, proto in [
        (os.path.join(ROOT, "proto"), "discovery/v1/discovery.proto"),
        (health_dir, "liner_health/health.proto"),
    ]:
        rc = protoc.main(
            ["protoc", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}", proto]
        )
        if rc != 0:
            raise SystemExit(f"FAIL: protoc could not compile {proto}")
    sys.path.insert(0, out)


def check(cond, what):
    if not cond:
        print("FAIL:", what, flush=True)
        sys.exit(1)
    print("ok:", what, flush=True)


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    ensure_venv()
    import grpc

    with tempfile.TemporaryDirectory() as out:
        compile_protos(out)
        from discovery.v1 import discovery_pb2 as pb
        from discovery.v1 import discovery_pb2_grpc as pb_grpc
        from liner_health import health_pb2, health_pb2_grpc

        channel = grpc.insecure_channel(sys.argv[1])
        grpc.channel_ready_future(channel).result(timeout=20)
        stub = pb_grpc.DiscoveryStub(channel)
        service = "pycompat"

        watch = stub.Watch(pb.WatchRequest(service=service), timeout=30)
        first = next(watch)
        check(len(first.instances) == 0, "watch starts with the (empty) full set")

        inst = pb.Instance(
            service=service, instance_id="py-1", address="127.0.0.1:9999", metadata={"lang": "python"}
        )
        reg = stub.Register(pb.RegisterRequest(instance=inst, ttl_seconds=30), timeout=10)
        check(reg.lease_id and reg.ttl_seconds == 30, "register returns a lease")

        update = next(watch)
        check([i.instance_id for i in update.instances] == ["py-1"], "watch sees the registration")
        check(update.instances[0].metadata["lang"] == "python", "metadata map round-trips")

        listed = stub.List(pb.ListRequest(service=service), timeout=10)
        check(len(listed.instances) == 1 and listed.instances[0].address == "127.0.0.1:9999", "list")

        hb = stub.Heartbeat(pb.HeartbeatRequest(lease_id=reg.lease_id), timeout=10)
        check(not hb.reregistered, "heartbeat renews a known lease")
        try:
            stub.Heartbeat(pb.HeartbeatRequest(lease_id="unknown-py"), timeout=10)
            check(False, "unknown lease without registration is NOT_FOUND")
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.NOT_FOUND, "unknown lease without registration is NOT_FOUND")

        health = health_pb2_grpc.HealthStub(channel)
        status = health.Check(health_pb2.HealthCheckRequest(service="discovery.v1.Discovery"), timeout=10)
        check(status.status == health_pb2.HealthCheckResponse.SERVING, "grpc.health.v1 says SERVING")

        dereg = stub.Deregister(pb.DeregisterRequest(lease_id=reg.lease_id), timeout=10)
        check(dereg.removed, "deregister")
        gone = next(watch)
        check(len(gone.instances) == 0, "watch sees the removal")
        watch.cancel()
        channel.close()
    print("grpc wire compatibility: PASS", flush=True)


if __name__ == "__main__":
    main()
