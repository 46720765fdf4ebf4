"""What does Muon cost a stage-1 step of the bundled recipe on a CPU? (07d, twenty-third round)

Builds a grounder with the bundled recipe's sizes (as `probe_compile.py`; untrained weights, which do not change the
cost), draws stage-1 batches of 16 from the world's training mixture, and times forward + backward + optimizer step
with AdamW (`TrainConfig(optimizer='adamw')`) and with `MuonAdamW` (`optimizer='muon'`), each through the package's
`make_optimizer`. The two alternate in blocks of 5 steps on the same batches, so drift in the machine's speed falls
on both. It also times the optimizer's `step()` alone. Muon runs twice: with its Newton-Schulz steps in float32
(`muon_ns_dtype='float32'`, what 'auto' picks on a CPU with no bfloat16 unit) and in bfloat16 (torch's own).

Usage: python tools/probe_muon_step.py WORLD [--threads 2] [--blocks 4]
"""
import argparse, random, warnings
import numpy as np
import torch
from referpix2pix.stage1 import ReferentWordsTask
from referpix2pix.train import TrainConfig, make_optimizer, trainable_named_parameters
from probe_common import recipe_grounder, recipe_samples, time_alternating

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('world'); ap.add_argument('--threads', type=int, default=2); ap.add_argument('--blocks', type=int, default=4)
    a = ap.parse_args()
    torch.set_num_threads(a.threads); random.seed(0); torch.manual_seed(0)
    task = ReferentWordsTask(recipe_grounder(), 1.0, 'expression')
    batches = [task.prepare_batch(s, rng=random) for s in recipe_samples(a.world, 5)]
    named = trainable_named_parameters(task)
    arms = {'adamw': dict(optimizer='adamw'), 'muon (float32 NS)': dict(optimizer='muon', muon_ns_dtype='float32'),
            'muon (bfloat16 NS)': dict(optimizer='muon', muon_ns_dtype='bfloat16')}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')                  # the bfloat16 arm warns on a CPU without a bfloat16 unit: that is what it measures
        opts = {k: make_optimizer(named, TrainConfig(lr=1e-4, muon_lr=1e-4, **kw), task) for k, kw in arms.items()}
    times = time_alternating({k: (task, batches, opt) for k, opt in opts.items()}, a.blocks)
    med = {k: float(np.median(v['step'])) for k, v in times.items()}
    for k in opts:
        print(f"{k}: {med[k]:.3f} s a step (median of {len(times[k]['step'])}), optimizer step {np.median(times[k]['opt']) * 1000:.1f} ms")
    for k in list(opts)[1:]: print(f"{k} / adamw: {med[k] / med['adamw']:.2f}x a step ({a.threads} threads)")
