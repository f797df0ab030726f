"""Data-parallel scaling of `helico run` (one process per GPU, NCCL): the same experiment, hence
the same global batch (train.batch_size x train.grad_accum windows per step), on 1, 2, ... GPUs.

For each GPU count it trains a fresh run for a few steps, logging every step, and reads the
run's metrics.jsonl: per-step wall time from consecutive `time` stamps (after the first
`--skip` steps, which include start-up and allocator warm-up), global real tokens per step,
and the loss curve. Efficiency at N GPUs = tokens/s at N / (N x tokens/s at 1). The loss
curves of every N are compared step by step with the 1-GPU curve (same batches, same seeds:
only summation order differs).

    python3 bench/ddp_scaling.py --helico .gpu-e/helico --gpus 1,2 --steps 12 --out bench/results \
        experiments/atomwell.toml [key=value ...]

A GPU count may carry overrides of its own, for a side-by-side row in the same call:
`--gpus 1,2,2:runtime.overlap_grad_reduce=false` (several joined with `+`).

Writes <date>-ddp-scaling-<gpu>.json and .md into --out.
"""

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import time


def train(args, n: int, extra: list, root: str):
    cmd = [args.helico, "run", args.experiment, *args.overrides, *extra]
    cmd += [f"train.steps={args.steps}", "train.log_every=1", "train.eval_every=1000000", "train.eval_batches=1"]
    cmd += ["train.checkpoint_every=1000000", "--runs-dir", root, "--force"]
    if n > 1:
        cmd += ["--gpus", str(n)]
    shutil.rmtree(root, ignore_errors=True)
    print("$", " ".join(cmd), file=sys.stderr, flush=True)
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    runs = [d for d, _, files in os.walk(root) if "metrics.jsonl" in files]
    assert len(runs) == 1, f"{n} GPUs: expected one run directory under {root} (rank 0 writes), found {runs}"
    records = [json.loads(line) for line in open(os.path.join(runs[0], "metrics.jsonl"))]
    train_records = sorted((r for r in records if r["split"] == "train"), key=lambda r: r["step"])
    assert [r["step"] for r in train_records] == list(range(1, args.steps + 1)), "one record per step"
    times = [r["time"] for r in train_records]
    step_secs = [b - a for a, b in zip(times, times[1:])][args.skip :]
    tokens = [r["tokens"] for r in train_records][1:][args.skip :]
    return {
        "gpus": n,
        "label": " ".join([str(n), *extra]),
        "command": " ".join(cmd),
        "wall_secs": wall,
        "step_secs": step_secs,
        "mean_step_secs": statistics.mean(step_secs),
        "tokens_per_step": statistics.mean(tokens),
        "tokens_per_s": sum(tokens) / sum(step_secs),
        "losses": [r["loss"] for r in train_records],
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--helico", required=True)
    p.add_argument(
        "--gpus", default="1,2", help="GPU counts, comma-separated, each optionally N:override+override; the first is the baseline"
    )
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--skip", type=int, default=3, help="step intervals left out of the timing")
    p.add_argument("--out", required=True)
    p.add_argument("--scratch", default="/tmp/helico-scaling")
    p.add_argument("experiment")
    p.add_argument("overrides", nargs="*")
    args = p.parse_args()
    rows = []
    for item in args.gpus.split(","):
        n, _, extra = item.partition(":")
        rows.append((int(n), [e for e in extra.split("+") if e]))
    results = [train(args, n, extra, os.path.join(args.scratch, f"row{i}")) for i, (n, extra) in enumerate(rows)]
    base = results[0]
    for r in results:
        r["efficiency"] = r["tokens_per_s"] / (r["gpus"] / base["gpus"] * base["tokens_per_s"])
        r["max_loss_rel_diff"] = max(abs(a - b) / abs(b) for a, b in zip(r["losses"], base["losses"]))
    gpu = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"], capture_output=True, text=True
    ).stdout.strip().splitlines()
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(sys.argv),
        "gpus": gpu,
        "experiment": args.experiment,
        "overrides": args.overrides,
        "results": results,
    }
    name = (gpu[0].split(",")[0].replace("NVIDIA ", "").split()[0].lower()) if gpu else "cpu"
    stem = os.path.join(args.out, datetime.datetime.now(datetime.timezone.utc).strftime(f"%Y%m%d-%H%M-ddp-scaling-{name}"))
    os.makedirs(args.out, exist_ok=True)
    with open(stem + ".json", "w") as f:
        json.dump(report, f, indent=2)
    md = [
        f"# Data-parallel scaling of `helico run`, {report['date']}",
        "",
        f"Command: `{report['command']}`",
        "",
        f"- GPUs: {'; '.join(gpu)}",
        f"- Experiment `{args.experiment}` {' '.join(args.overrides)}, {args.steps} steps, timing after the first "
        f"{args.skip + 1} steps; the global batch is the same at every GPU count",
        "",
        "| GPUs | real tokens/step | step mean (s) | tokens/s | scaling efficiency | max rel. loss diff vs 1st |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        md.append(
            f"| {r['label']} | {r['tokens_per_step']:.0f} | {r['mean_step_secs']:.3f} | {r['tokens_per_s']:.0f} | "
            f"{100 * r['efficiency']:.1f}% | {r['max_loss_rel_diff']:.2e} |"
        )
    md += ["", "Loss by step:", "", "| step | " + " | ".join(f"{r['label']} GPU" for r in results) + " |"]
    md.append("|---|" + "---|" * len(results))
    for i in range(args.steps):
        md.append(f"| {i + 1} | " + " | ".join(f"{r['losses'][i]:.5f}" for r in results) + " |")
    with open(stem + ".md", "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
