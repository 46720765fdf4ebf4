"""Can the tiny grounder's two pre-trainings be shorter? (07d, twenty-sixth round)

Runs the bundled recipe's SAM point pre-training (`pretrain_sam`) or its vision-tower pre-training (`pretrain_vision`)
alone, on a grounder of the recipe's sizes built as `train_grounder` builds it (seed 0), for a given number of steps
and learning-rate schedule, and prints the seconds it took and its held-out score as one JSON line: SAM's mean point
IoU on the validation objects (`sam_point_iou`), the tower's shape and colour accuracy on them. The recipe runs
600 SAM steps and 2,000 tower steps, constant after the warm-up.

With `--optimizer muon --muon-lr R` the pre-training runs Muon on its hidden matrices (07d, twenty-seventh round).

Usage: python tools/probe_pretrain_schedule.py WORLD OUT {sam,vision} STEPS [--schedule cosine] [--threads 2] [--optimizer muon --muon-lr 3e-3]
"""
import argparse, json, time
import torch
from referpix2pix.core import seed_everything
from referpix2pix.stage1 import pretrain_sam, pretrain_vision
from probe_common import recipe_grounder

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('world'); ap.add_argument('out'); ap.add_argument('part', choices=('sam', 'vision')); ap.add_argument('steps', type=int)
    ap.add_argument('--schedule', default='cosine'); ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--optimizer', default='adamw'); ap.add_argument('--muon-lr', type=float)
    a = ap.parse_args()
    torch.set_num_threads(a.threads); seed_everything(0)
    g = recipe_grounder(freeze_vision=False)   # the pre-trainings train the tower; `train_grounder` fixes it only after them
    t0 = time.time()
    if a.part == 'sam':
        r = pretrain_sam(g, a.world, a.out, steps=a.steps, progress=False, lr_schedule=a.schedule, optimizer=a.optimizer, muon_lr=a.muon_lr)
        score = dict(final_dice=r['history'][-1]['dice'], val_point_iou=r['val_point_iou'])
    else:
        r = pretrain_vision(g, a.world, a.out, steps=a.steps, progress=False, lr_schedule=a.schedule, optimizer=a.optimizer, muon_lr=a.muon_lr)
        score = dict(accuracy=r['accuracy'])
    print(json.dumps(dict(part=a.part, steps=a.steps, schedule=a.schedule, optimizer=a.optimizer, muon_lr=a.muon_lr, threads=a.threads, seconds=round(time.time() - t0, 1), **score)))
