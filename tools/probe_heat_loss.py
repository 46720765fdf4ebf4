"""Is the [SEG] heatmap's loss too weak a selection signal? (07d, sixteenth round)

The tiny grounder's selection path is the heatmap: scaled dot products of the [SEG] state with the image tokens,
trained with a per-patch BCE against each patch's coverage by the target (`heat_targets`), weight 1. Averaged over
the 64 patches, the few target patches pull weakly, and a distractor is pushed no harder than the background. This
tool runs the bundled recipe (`train_grounder` with the arguments of 07d's `referpix2pix train grounder` command) with

  --heat-weight W    the heatmap BCE's weight (`HEAT_WEIGHT`, 1 in the package), for this process only
  --pointer W        the pointer loss's weight (`pointer_loss`, 04_grounder; the CLI's `--pointer-loss`): a softmax
                     cross-entropy over the patches against the target's coverage normalised to sum to 1

The result loads with `Grounder.from_pretrained` like any run.

Usage: python tools/probe_heat_loss.py WORLD OUT --heat-weight 4 [--pointer 0.5] [--steps 4000] [--threads 1]
"""
import argparse, json
import referpix2pix.grounder as G
from referpix2pix.stage1 import train_grounder

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('world'); ap.add_argument('out')
    ap.add_argument('--heat-weight', type=float, default=1.0); ap.add_argument('--pointer', type=float, default=0.0)
    ap.add_argument('--steps', type=int, default=4000); ap.add_argument('--eval-every', type=int, default=None)
    ap.add_argument('--threads', type=int, default=1); ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    G.HEAT_WEIGHT = a.heat_weight   # read when a Grounder is built (its loss_weights)
    # the bundled recipe (07d): referpix2pix train grounder --preset tiny --steps 4000 --sam-steps 600 --lr 1e-3 --semantic
    # --vision-steps 2000 --freeze-vision --llm-layers 3 --vision-layers 3 --vision-hidden 128 --sam-patch 4 --vocab-size 2048 --refer-turns 3
    r = train_grounder(a.world, a.out, steps=a.steps, lr=1e-3, sam_steps=600, semantic=True, vision_steps=2000, freeze_vision=True,
                       llm_layers=3, vision_layers=3, vision_hidden=128, sam_patch=4, vocab_size=2048, refer_turns=3,
                       pointer=a.pointer, eval_every=a.eval_every, seed=a.seed, threads=a.threads, progress=False)
    print(json.dumps(dict(heat_weight=a.heat_weight, pointer=a.pointer, grounding=r['grounding'], train_seconds=r['train_seconds']), indent=1))
