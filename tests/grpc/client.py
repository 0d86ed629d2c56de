#!/usr/bin/env python3
"""The gRPC API as a client nobody here wrote sees it: Python grpcio finds
svclbaas.v1.Translator by server reflection (no .proto on this side), builds
its messages from the reflected descriptors, and calls Apply and ApplyStream
with plain JSON-shaped Structs; the standard health service answers SERVING.

Usage: client.py PATH/TO/svc-lbaas  (with the venv of tests/sim/venv.sh).
Closes with "grpc: N passed, M failed".
"""
import os
import subprocess
import sys

import grpc
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

checks = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    checks["passed" if ok else "failed"] += 1
    print(("ok    " if ok else "FAIL  ") + name + ("" if ok else f": {detail}"), flush=True)


SERVICE = {
    "apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {"type": "LoadBalancer", "clusterIP": "10.2.0.42",
             "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
}
ENDPOINTS = {
    "apiVersion": "v1", "kind": "Endpoints",
    "metadata": {"name": "web", "namespace": "shop"},
    "subsets": [{"addresses": [{"ip": "10.1.0.5"}, {"ip": "10.1.0.6"}], "ports": [{"name": "http", "port": 8080}]}],
}


TLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "tls")


def serve(*extra):
    """Starts `svc-lbaas serve` on free ports; returns the process and its gRPC address."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["SVC_LBAAS_SIM_PROVISIONING_DELAY_MS"] = "50"
    server = subprocess.Popen([sys.argv[1], "serve", "--rest-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", *extra],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    while True:
        line = server.stdout.readline()
        if not line:
            raise SystemExit("svc-lbaas serve exited early")
        if line.startswith("GRPC_ADDR="):
            return server, line.strip().split("=", 1)[1]


def main():
    server, addr = serve()
    try:
        run(grpc.insecure_channel(addr))
    finally:
        server.terminate()
        server.wait(timeout=10)
    server, addr = serve("--tls-cert", os.path.join(TLS, "cert.pem"), "--tls-key", os.path.join(TLS, "key.pem"))
    try:
        with open(os.path.join(TLS, "ca.pem"), "rb") as f:
            credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
        channel = grpc.secure_channel(addr, credentials)
        grpc.channel_ready_future(channel).result(timeout=10)
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
        check("with --tls-cert, gRPC is served over TLS (health SERVING)",
              health.status == health_pb2.HealthCheckResponse.SERVING, health)
        try:
            health_pb2_grpc.HealthStub(grpc.insecure_channel(addr)).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
            check("and plaintext is refused there", False, "plaintext answered")
        except grpc.RpcError:
            check("and plaintext is refused there", True)
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(f"grpc: {checks['passed']} passed, {checks['failed']} failed")
    return 1 if checks["failed"] else 0


def run(channel):
    grpc.channel_ready_future(channel).result(timeout=10)

    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    answers = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = sorted(s.name for a in answers for s in a.list_services_response.service)
    check("reflection lists the Translator and the health service",
          "svclbaas.v1.Translator" in names and "grpc.health.v1.Health" in names, names)

    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="svclbaas.v1.Translator"))
    check("the health service answers SERVING", health.status == health_pb2.HealthCheckResponse.SERVING, health)

    pool = DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
    translator = pool.FindServiceByName("svclbaas.v1.Translator")
    offered = ["Plan", "Apply", "ApplyStream", "Get", "Delete", "HandleEvent", "Sync",
               "ApplyGateway", "PlanGateway", "GetGateway", "DeleteGateway"]
    check("the Translator offers " + ", ".join(offered),
          sorted(m.name for m in translator.methods) == sorted(offered),
          [m.name for m in translator.methods])

    apply = translator.FindMethodByName("Apply")
    Request = message_factory.GetMessageClass(apply.input_type)
    Answer = message_factory.GetMessageClass(apply.output_type)
    request = json_format.ParseDict({"service": SERVICE, "endpoints": ENDPOINTS}, Request())
    call = channel.unary_unary("/svclbaas.v1.Translator/Apply",
                               request_serializer=Request.SerializeToString, response_deserializer=Answer.FromString)
    answer = json_format.MessageToDict(call(request, timeout=30))
    ip = answer.get("status", {}).get("loadBalancer", {}).get("ingress", [{}])[0].get("ip", "")
    check("Apply with JSON-shaped Structs answers the ingress IP", ip.startswith("172.24.4."), answer)
    check("Apply created the load balancer in 2 writes",
          answer.get("action") == "created" and answer.get("openstackCalls", {}).get("writes") == 2, answer)

    stream = translator.FindMethodByName("ApplyStream")
    Progress = message_factory.GetMessageClass(stream.output_type)
    changed = dict(ENDPOINTS, subsets=[{"addresses": [{"ip": "10.1.0.7"}], "ports": [{"name": "http", "port": 8080}]}])
    request = json_format.ParseDict({"service": SERVICE, "endpoints": changed}, Request())
    call = channel.unary_stream("/svclbaas.v1.Translator/ApplyStream",
                                request_serializer=Request.SerializeToString, response_deserializer=Progress.FromString)
    events = [json_format.MessageToDict(m) for m in call(request, timeout=30)]
    kinds = [next(iter(e)) for e in events]
    check("ApplyStream reports started, finished and a wait, then the answer",
          kinds[:2] == ["started", "finished"] and "wait" in kinds and kinds[-1] == "done", kinds)
    done = events[-1].get("done", {}) if events else {}
    members = [m["address"] for l in done.get("loadBalancer", {}).get("listeners", []) for m in l.get("pool", {}).get("members", [])]
    check("the streamed answer shows the new member", members == ["10.1.0.7"], done)

    sync = translator.FindMethodByName("Sync")
    SyncRequest = message_factory.GetMessageClass(sync.input_type)
    SyncAnswer = message_factory.GetMessageClass(sync.output_type)
    listed = {"kind": "List", "apiVersion": "v1", "items": [SERVICE]}
    call = channel.unary_unary("/svclbaas.v1.Translator/Sync", request_serializer=SyncRequest.SerializeToString,
                               response_deserializer=SyncAnswer.FromString)
    result = json_format.MessageToDict(call(json_format.ParseDict({"list": listed, "dryRun": True}, SyncRequest()),
                                            timeout=30)).get("result", {})
    check("a dry-run Sync of the list finds the Service unchanged and no orphan",
          result.get("dryRun") is True and result.get("orphans") == []
          and [s.get("result", {}).get("action") for s in result.get("services", [])] == ["unchanged"], result)

    gateway = translator.FindMethodByName("ApplyGateway")
    GatewayRequest = message_factory.GetMessageClass(gateway.input_type)
    GatewayAnswer = message_factory.GetMessageClass(gateway.output_type)
    body = {
        "gateway": {"metadata": {"name": "edge", "namespace": "shop"},
                    "spec": {"gatewayClassName": "openstack",
                             "listeners": [{"name": "web", "port": 80, "protocol": "HTTP"}]}},
        "routes": [{"kind": "HTTPRoute", "metadata": {"name": "site", "namespace": "shop"},
                    "spec": {"parentRefs": [{"name": "edge"}],
                             "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
                                        "backendRefs": [{"name": "web", "port": 80}]}]}}],
        "services": [SERVICE],
    }
    call = channel.unary_unary("/svclbaas.v1.Translator/ApplyGateway", request_serializer=GatewayRequest.SerializeToString,
                               response_deserializer=GatewayAnswer.FromString)
    answer = json_format.MessageToDict(call(json_format.ParseDict({"request": body}, GatewayRequest()), timeout=60))
    result = answer.get("result", {})
    policies = [p for l in result.get("loadBalancer", {}).get("listeners", []) for p in l.get("l7Policies", [])]
    check("ApplyGateway converges a Gateway whose route is one L7 policy",
          answer.get("converged") is True and result.get("action") == "created" and len(policies) == 1
          and any(r.get("value") == "^/api(/|$)" for r in policies[0].get("rules", [])), answer)

    bad = json_format.ParseDict({"service": dict(SERVICE, spec={"ports": [{"port": "eighty"}]})}, Request())
    try:
        channel.unary_unary("/svclbaas.v1.Translator/Apply", request_serializer=Request.SerializeToString,
                            response_deserializer=Answer.FromString)(bad, timeout=30)
        check("a bad Service is INVALID_ARGUMENT naming the field", False, "no error")
    except grpc.RpcError as e:
        check("a bad Service is INVALID_ARGUMENT naming the field",
              e.code() == grpc.StatusCode.INVALID_ARGUMENT and "service.spec.ports[0].port" in e.details(), e)


if __name__ == "__main__":
    sys.exit(main())
