"""Reads a W&B offline run log with W&B's own code: the framing with wandb 0.28's
`wandb.sdk.internal.datastore.DataStore` (the reader wandb used for these files; removed in
0.29), each record with the protobuf classes wandb ships (`wandb_internal_pb2.Record`).

usage: wandb_read.py RUN.wandb  ->  [{"type": oneof name, "record": the record as a dict}, ...]
History, summary and config values are decoded from their JSON text with Python's json (which
accepts NaN and Infinity, as W&B writes them); non-finite numbers are printed as the strings
"NaN", "Infinity", "-Infinity" so the output stays strict JSON.
"""
import json
import sys

from google.protobuf.json_format import MessageToDict
from wandb.proto import wandb_internal_pb2 as pb
from wandb.sdk.internal.datastore import DataStore

store = DataStore()
store.open_for_scan(sys.argv[1])
out = []
while True:
    data = store.scan_data()
    if data is None:
        break
    record = pb.Record()
    record.ParseFromString(data)
    kind = record.WhichOneof("record_type")
    entry = {"type": kind, "num": record.num, "stream": record._info.stream_id}
    entry["record"] = MessageToDict(getattr(record, kind), preserving_proto_field_name=True)
    items = {
        "history": lambda r: r.history.item,
        "summary": lambda r: r.summary.update,
        "run": lambda r: r.run.config.update,
    }.get(kind)
    if items:
        entry["values"] = {i.key: json.loads(i.value_json) for i in items(record)}
    if kind == "history":
        entry["step"] = record.history.step.num
    out.append(entry)


def strict(v):
    if isinstance(v, float) and v != v:
        return "NaN"
    if isinstance(v, float) and v in (float("inf"), float("-inf")):
        return "Infinity" if v > 0 else "-Infinity"
    if isinstance(v, dict):
        return {k: strict(x) for k, x in v.items()}
    if isinstance(v, list):
        return [strict(x) for x in v]
    return v


print(json.dumps(strict(out), allow_nan=False))
