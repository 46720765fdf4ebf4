"""Does a shift augmentation teach the tiny grounder shapes? (a probe for the shape error of 07d's seventh round)

A ViT with 8-pixel patches sees an 8-13 px shape cut into different patch fragments at every position. This probe
moves every stage-1 training image and its masks by the same random offset of up to `--shift` pixels in x and y
(edge-padded image, empty mask border), so each object is seen at many sub-patch offsets. The offsets come from the
training loop's checkpointed `random` stream, so a resumed run stays exact. Evaluation images are not moved.

It patches `Grounder._prepare_sample` for this process only. The result is an ordinary grounder folder.

Usage: python tools/probe_shift_augment.py WORLD OUT --shift 4 --steps 2500 [--semantic] [--lr 1e-3] [--resume]
"""
import argparse, json
import numpy as np
from PIL import Image
from referpix2pix.core import load_image
from referpix2pix.grounder import Grounder

def shift(a:np.ndarray, dx:int, dy:int, s:int, mode:str)->np.ndarray:
    "`a` ([H, W] or [H, W, C]) moved right by dx and down by dy, the uncovered border padded with `mode`"
    p = np.pad(a, ((s, s), (s, s)) + ((0, 0),) * (a.ndim - 2), mode=mode)
    H, W = a.shape[:2]; return p[s - dy:s - dy + H, s - dx:s - dx + W]

def patch_grounder(s:int):
    "Make `Grounder._prepare_sample` shift training samples (those prepared with an rng) by up to `s` pixels"
    prep = Grounder._prepare_sample
    def _prepare_sample(self, sample, rng=None, max_length=None):
        if rng is not None and s > 0:
            dx, dy = rng.randint(-s, s), rng.randint(-s, s)
            im = np.asarray(load_image(sample['image']).convert('RGB'))
            sample = dict(sample, image=Image.fromarray(shift(im, dx, dy, s, 'edge')),
                          masks=[shift(np.asarray(m, bool), dx, dy, s, 'constant') for m in sample['masks']])
        return prep(self, sample, rng, max_length)
    Grounder._prepare_sample = _prepare_sample

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('world'); ap.add_argument('out')
    ap.add_argument('--shift', type=int, default=4); ap.add_argument('--steps', type=int, default=2500)
    ap.add_argument('--lr', type=float, default=1e-3); ap.add_argument('--sam-steps', type=int, default=600)
    ap.add_argument('--eval-every', type=int, default=500); ap.add_argument('--semantic', action='store_true')
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--resume', action='store_true', help='continue OUT from its latest checkpoint')
    a = ap.parse_args()
    if a.shift < 0: ap.error("--shift must be >= 0")
    patch_grounder(a.shift)
    from referpix2pix.stage1 import train_grounder
    r = train_grounder(a.world, a.out, steps=a.steps, sam_steps=a.sam_steps, lr=a.lr, eval_every=a.eval_every,
                       semantic=a.semantic, threads=a.threads, progress=False, resume='latest' if a.resume else None)
    print(json.dumps(dict(shift=a.shift, grounding=r['grounding'], train_seconds=r['train_seconds']), indent=1))
