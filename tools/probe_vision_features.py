"""How much object shape does a grounder's vision tower carry? (07b, "Pre-training the vision tower")

Every object of a world's refer files becomes one feature vector: the patch tokens of the layer LLaVA reads
(`vision_feature_layer`, no CLS) averaged over the object's mask (`stage1.VisionAttributeTask.features`). Two modes:

  --grounder DIR   freeze that grounder's tower and fit a linear classifier and an MLP (256 hidden) on the training
                   objects' features (full batch, standardised); report train and test accuracy per attribute
  --scratch        a freshly built tiny grounder's tower trained on the task itself with linear heads
                   (`VisionAttributeTask`, what `train_grounder(vision_steps=)` runs); test accuracy every 200 steps

Objects come from the refer split of their image: train for fitting, test for scoring. Chance on the world's eight
shapes is 0.125.

Usage: python tools/probe_vision_features.py WORLD --grounder referpix2pix/assets/default/grounder
       python tools/probe_vision_features.py WORLD --scratch --steps 2000
"""
import argparse, json, random, time
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
from referpix2pix.data.datasets import RefCOCO
from referpix2pix.grounder import Grounder
from referpix2pix.stage1 import ObjectAttributes, collate_attributes, VisionAttributeTask, attribute_accuracy

@torch.no_grad()
def all_features(task, ds, bs=256):
    "features [N, H] and labels {attribute: [N]} of every object of `ds`"
    fs, ys = [], {k: [] for k in task.heads}
    for i in range(0, len(ds), bs):
        b = collate_attributes([ds[j] for j in range(i, min(i + bs, len(ds)))], task.g)
        fs.append(task.features(b['pixel_values'], b['weights']))
        for k in ys: ys[k].append(b[k])
    return torch.cat(fs), {k: torch.cat(v) for k, v in ys.items()}

def fit(xtr, ytr, xte, yte, n_cls, hidden, steps=2000, seed=0):
    "train / test accuracy of a classifier fitted full-batch with AdamW"
    torch.manual_seed(seed)
    head = nn.Linear(xtr.shape[1], n_cls) if not hidden else nn.Sequential(nn.Linear(xtr.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, n_cls))
    opt = torch.optim.AdamW(head.parameters(), 1e-2 if not hidden else 3e-3, weight_decay=1e-4)
    for _ in range(steps):
        loss = F.cross_entropy(head(xtr), ytr); opt.zero_grad(); loss.backward(); opt.step()
    with torch.no_grad(): return float((head(xtr).argmax(-1) == ytr).float().mean()), float((head(xte).argmax(-1) == yte).float().mean())

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('world'); ap.add_argument('--grounder', default=None); ap.add_argument('--scratch', action='store_true')
    ap.add_argument('--steps', type=int, default=2000); ap.add_argument('--batch-size', type=int, default=64)
    ap.add_argument('--lr', type=float, default=1e-3); ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    if bool(a.grounder) == a.scratch: ap.error('give exactly one of --grounder DIR and --scratch')
    torch.set_num_threads(a.threads); torch.manual_seed(a.seed); random.seed(a.seed)
    rc = RefCOCO(f'{a.world}/refcoco'); tr, te = ObjectAttributes(rc, rc.image_ids('train')), ObjectAttributes(rc, rc.image_ids('test'))
    g = Grounder.from_pretrained(a.grounder, device='cpu') if a.grounder else Grounder.build('tiny', device='cpu', seed=a.seed)
    task = VisionAttributeTask(g, len(tr.shapes), len(tr.colours)); t0 = time.time(); out = dict(train_objects=len(tr), test_objects=len(te))
    if a.grounder:
        g.eval(); (xtr, ytr), (xte, yte) = all_features(task, tr), all_features(task, te)
        mu, sd = xtr.mean(0), xtr.std(0) + 1e-6; xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
        for k, n in (('shape', len(tr.shapes)), ('colour', len(tr.colours))):
            for name, hid in (('linear', 0), ('mlp256', 256)):
                acc_tr, acc_te = fit(xtr, ytr[k], xte, yte[k], n, hid, seed=a.seed)
                out[f'{k}_{name}'] = dict(train=round(acc_tr, 4), test=round(acc_te, 4)); print(k, name, out[f'{k}_{name}'], flush=True)
    else:
        params = task.trainable_parameters(); opt = torch.optim.AdamW(params, a.lr, weight_decay=0); out['curve'] = []
        for st in range(1, a.steps + 1):
            b = collate_attributes([tr[i] for i in random.sample(range(len(tr)), a.batch_size)], g)
            loss = task.training_step(b)['loss']; opt.zero_grad(); loss.backward(); opt.step()
            if st % 200 == 0 or st == a.steps:
                task.eval(); acc = attribute_accuracy(task, te); task.train()
                out['curve'].append(dict(step=st, seconds=round(time.time() - t0, 1), **acc)); print(out['curve'][-1], flush=True)
    out['seconds'] = round(time.time() - t0, 1); print(json.dumps(out))
