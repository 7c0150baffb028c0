#!/usr/bin/env python3
"""An outside gRPC client for VOIKE's standard services (used by node/grpc-standard.test.ts).

Written against Python grpcio and protobuf only (Debian: python3-grpcio), with no VOIKE .proto
file: the health and reflection messages are declared here from the public protocols, and the
voike.v1 messages are built from what the server's reflection returns, as grpcurl does.

Usage: grpc-probe.py HOST:PORT [API_KEY]. Prints one JSON object:
  health:      {service: status name} from grpc.health.v1.Health/Check for "", voike.v1.Mesh, voike.v1.Grid
  unknown:     the status code name Check answers for an unknown service
  services:    {"v1": [...], "v1alpha": [...]} from reflection list_services
  grid_methods: the methods of voike.v1.Grid in the file reflection returns for that symbol
  bad_request: {code, message, status_code, violations: [{field, description}], type_urls} from a
               SubmitJob with a bad parameter, decoded from grpc-status-details-bin
"""
import json
import sys

import grpc
from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto


def message_class(pool, full_name):
    desc = pool.FindMessageTypeByName(full_name)
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(pool).GetPrototype(desc)


def field(msg, name, number, ftype, label=F.LABEL_OPTIONAL, type_name=None, oneof=None):
    f = msg.field.add(name=name, number=number, type=ftype, label=label)
    if type_name:
        f.type_name = type_name
    if oneof is not None:
        f.oneof_index = oneof


def declare_protocols():
    """grpc.health.v1, grpc.reflection (subset; v1 and v1alpha share the wire format), google.rpc."""
    pool = descriptor_pool.DescriptorPool()
    any_file = descriptor_pb2.FileDescriptorProto()
    any_pb2.DESCRIPTOR.CopyToProto(any_file)
    pool.Add(any_file)

    health = descriptor_pb2.FileDescriptorProto(name="probe/health.proto", package="grpc.health.v1", syntax="proto3")
    req = health.message_type.add(name="HealthCheckRequest")
    field(req, "service", 1, F.TYPE_STRING)
    res = health.message_type.add(name="HealthCheckResponse")
    enum = res.enum_type.add(name="ServingStatus")
    for i, n in enumerate(["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"]):
        enum.value.add(name=n, number=i)
    field(res, "status", 1, F.TYPE_ENUM, type_name=".grpc.health.v1.HealthCheckResponse.ServingStatus")
    pool.Add(health)

    refl = descriptor_pb2.FileDescriptorProto(name="probe/reflection.proto", package="probe.reflection", syntax="proto3")
    req = refl.message_type.add(name="Request")
    req.oneof_decl.add(name="message_request")
    field(req, "host", 1, F.TYPE_STRING)
    field(req, "file_containing_symbol", 4, F.TYPE_STRING, oneof=0)
    field(req, "list_services", 7, F.TYPE_STRING, oneof=0)
    fdr = refl.message_type.add(name="FileDescriptorResponse")
    field(fdr, "file_descriptor_proto", 1, F.TYPE_BYTES, F.LABEL_REPEATED)
    svc = refl.message_type.add(name="ServiceResponse")
    field(svc, "name", 1, F.TYPE_STRING)
    lst = refl.message_type.add(name="ListServiceResponse")
    field(lst, "service", 1, F.TYPE_MESSAGE, F.LABEL_REPEATED, ".probe.reflection.ServiceResponse")
    err = refl.message_type.add(name="ErrorResponse")
    field(err, "error_code", 1, F.TYPE_INT32)
    field(err, "error_message", 2, F.TYPE_STRING)
    res = refl.message_type.add(name="Response")
    res.oneof_decl.add(name="message_response")
    field(res, "valid_host", 1, F.TYPE_STRING)
    field(res, "file_descriptor_response", 4, F.TYPE_MESSAGE, type_name=".probe.reflection.FileDescriptorResponse", oneof=0)
    field(res, "list_services_response", 6, F.TYPE_MESSAGE, type_name=".probe.reflection.ListServiceResponse", oneof=0)
    field(res, "error_response", 7, F.TYPE_MESSAGE, type_name=".probe.reflection.ErrorResponse", oneof=0)
    pool.Add(refl)

    rpc = descriptor_pb2.FileDescriptorProto(name="probe/rpc.proto", package="google.rpc", syntax="proto3", dependency=["google/protobuf/any.proto"])
    st = rpc.message_type.add(name="Status")
    field(st, "code", 1, F.TYPE_INT32)
    field(st, "message", 2, F.TYPE_STRING)
    field(st, "details", 3, F.TYPE_MESSAGE, F.LABEL_REPEATED, ".google.protobuf.Any")
    br = rpc.message_type.add(name="BadRequest")
    fv = br.nested_type.add(name="FieldViolation")
    field(fv, "field", 1, F.TYPE_STRING)
    field(fv, "description", 2, F.TYPE_STRING)
    field(br, "field_violations", 1, F.TYPE_MESSAGE, F.LABEL_REPEATED, ".google.rpc.BadRequest.FieldViolation")
    pool.Add(rpc)
    return pool


def reflect(channel, version, cls, requests, md):
    call = channel.stream_stream(
        "/grpc.reflection.%s.ServerReflection/ServerReflectionInfo" % version,
        request_serializer=cls["Request"].SerializeToString,
        response_deserializer=cls["Response"].FromString,
    )
    return list(call(iter(requests), timeout=10, metadata=md))


def pool_from_reflection(files):
    """A pool of the files reflection returned (dependencies may come after their users)."""
    pool = descriptor_pool.DescriptorPool()
    pending = [descriptor_pb2.FileDescriptorProto.FromString(b) for b in files]
    while pending:
        added = False
        for fd in list(pending):
            try:
                pool.Add(fd)
                pending.remove(fd)
                added = True
            except Exception:  # a dependency not added yet
                pass
        if not added:
            raise RuntimeError("reflection returned files with missing dependencies: %s" % [f.name for f in pending])
    return pool


def main():
    target = sys.argv[1]
    md = [("x-voike-api-key", sys.argv[2])] if len(sys.argv) > 2 and sys.argv[2] else []
    pool = declare_protocols()
    cls = {n: message_class(pool, "probe.reflection." + n) for n in ["Request", "Response"]}
    hreq = message_class(pool, "grpc.health.v1.HealthCheckRequest")
    hres = message_class(pool, "grpc.health.v1.HealthCheckResponse")
    status_cls = message_class(pool, "google.rpc.Status")
    bad_request_cls = message_class(pool, "google.rpc.BadRequest")
    out = {"client": "python grpcio %s" % grpc.__version__}

    with grpc.insecure_channel(target) as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        check = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=hreq.SerializeToString, response_deserializer=hres.FromString)
        names = hres.DESCRIPTOR.enum_types_by_name["ServingStatus"].values_by_number
        out["health"] = {s: names[check(hreq(service=s), timeout=10).status].name for s in ["", "voike.v1.Mesh", "voike.v1.Grid"]}
        try:
            check(hreq(service="no.such.Service"), timeout=10)
            out["unknown"] = "OK"
        except grpc.RpcError as e:
            out["unknown"] = e.code().name

        out["services"] = {}
        for version in ["v1", "v1alpha"]:
            res = reflect(channel, version, cls, [cls["Request"](list_services="*")], md)
            out["services"][version] = sorted(s.name for s in res[0].list_services_response.service)

        res = reflect(channel, "v1", cls, [cls["Request"](file_containing_symbol="voike.v1.Grid")], md)
        grid_pool = pool_from_reflection(res[0].file_descriptor_response.file_descriptor_proto)
        grid = grid_pool.FindServiceByName("voike.v1.Grid")
        out["grid_methods"] = sorted(m.name for m in grid.methods)

        submit = grid.methods_by_name["SubmitJob"]
        req_cls = message_class(grid_pool, submit.input_type.full_name)
        res_cls = message_class(grid_pool, submit.output_type.full_name)
        call = channel.unary_unary("/voike.v1.Grid/SubmitJob", request_serializer=req_cls.SerializeToString, response_deserializer=res_cls.FromString)
        try:
            call(req_cls(kind="fib", params_json=json.dumps({"n": -1, "segments": 1})), timeout=10, metadata=md)
            out["bad_request"] = None
        except grpc.RpcError as e:
            raw = dict(e.trailing_metadata() or ()).get("grpc-status-details-bin")
            bad = {"code": e.code().name, "message": e.details(), "violations": [], "type_urls": []}
            if raw is not None:
                st = status_cls.FromString(raw)
                bad["status_code"] = st.code
                bad["status_message"] = st.message
                for d in st.details:
                    bad["type_urls"].append(d.type_url)
                    if d.type_url.endswith("/google.rpc.BadRequest"):
                        for v in bad_request_cls.FromString(d.value).field_violations:
                            bad["violations"].append({"field": v.field, "description": v.description})
            out["bad_request"] = bad
    print(json.dumps(out))


if __name__ == "__main__":
    main()
