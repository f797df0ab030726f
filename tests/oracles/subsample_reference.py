"""The rows helico's documented MSA subsampling keeps (data/msa `Msa::subsample`): the query,
then max_rows - 1 of the other rows drawn by a partial Fisher-Yates shuffle over SplitMix64
(Steele, Lea & Flood 2014) seeded with SEED, kept in their original order.

usage: subsample_reference.py DEPTH MAX_ROWS SEED  ->  [row index, ...] as JSON
"""
import json
import sys

MASK = (1 << 64) - 1


def splitmix64(state):
    while True:
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        yield z ^ (z >> 31)


depth, max_rows, seed = map(int, sys.argv[1:])
if depth <= max(max_rows, 1):
    kept = list(range(depth))
else:
    others, rng, take = list(range(1, depth)), splitmix64(seed), max_rows - 1
    for i in range(take):
        j = i + next(rng) % (len(others) - i)
        others[i], others[j] = others[j], others[i]
    kept = [0] + sorted(others[:take])
json.dump(kept, sys.stdout)
