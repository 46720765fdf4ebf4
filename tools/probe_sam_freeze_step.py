"""What does a fixed, cached SAM image encoder save a stage-1 step of the bundled recipe on a CPU? (07d, twenty-fifth round)

Builds two grounders with the bundled recipe's sizes (untrained weights, which do not change the cost; the vision tower
fixed, as `--freeze-vision` does), one whose SAM image encoder trains and one whose encoder is fixed and read from a
`SamEmbeddingCache` (`--freeze-sam-encoder`). It draws stage-1 batches of 16 from the world's training mixture and fills
the cache first, as after the first epoch. Then it times forward + backward + AdamW step on the same batches, the two
alternating in blocks so that drift in the machine's speed falls on both.

Usage: python tools/probe_sam_freeze_step.py WORLD [--threads 2] [--blocks 3]
"""
import argparse, random
import numpy as np
import torch
from referpix2pix.stage1 import ReferentWordsTask, SamEmbeddingCache, with_cached_embeddings
from referpix2pix.train import TrainConfig, make_optimizer, trainable_named_parameters
from probe_common import recipe_grounder, recipe_samples, time_alternating

def setup(samples:list, frozen:bool):
    "A task, its prepared batches and its AdamW, as `train_grounder` builds them with or without `freeze_sam_encoder`"
    g = recipe_grounder()
    if frozen: g.sam.image_encoder.requires_grad_(False)
    task = ReferentWordsTask(g, 1.0, 'expression')
    prepare = lambda s: task.prepare_batch(s, rng=random)
    if frozen: prepare = with_cached_embeddings(prepare, SamEmbeddingCache(g))
    batches = [prepare(s) for s in samples]            # the cache now holds every image of these batches
    return task, batches, make_optimizer(trainable_named_parameters(task), TrainConfig(lr=1e-4), task)

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('world'); ap.add_argument('--threads', type=int, default=2); ap.add_argument('--blocks', type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads); random.seed(0); torch.manual_seed(0)
    samples = recipe_samples(a.world, 6)
    arms = {k: setup(samples, k == 'fixed, cached encoder') for k in ('trained encoder', 'fixed, cached encoder')}
    times = time_alternating(arms, a.blocks)
    med = {k: float(np.median(v['step'])) for k, v in times.items()}
    for k, v in med.items(): print(f"{k}: {v:.3f} s a step (median of {len(times[k]['step'])})")
    print(f"trained / fixed: {med['trained encoder'] / med['fixed, cached encoder']:.2f}x a step ({a.threads} threads)")
