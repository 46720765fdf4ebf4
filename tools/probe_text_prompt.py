"""Can the tiny SAM learn referring selection from a clean text prompt? (the diagnosis behind 07b's referent-words loss)

No LLM: a mean of learned token embeddings -> MLP -> one sparse prompt token of the tiny grounder's SAM (same
architecture and initialisation as `Grounder.build('tiny')`), trained with the paper's mask losses (2 BCE + 0.5 DICE)
on the plain referring expressions of a world folder, and scored (mean IoU) on its test expressions by expression type.

  --text words     the bag is taken over the expression's own tokens ("the left red heart")
  --text template  the bag is taken over the paper's whole templated first turn around it (what the LLM sees)
  --sam-steps N    first pre-train the SAM on point-prompted instance segmentation (`stage1.pretrain_sam`)
  --patch P        the SAM image encoder's patch size (tiny preset: 8; 4 quadruples its tokens)

Usage: python tools/probe_text_prompt.py WORLD --text words --steps 1600 [--lr 1e-3] [--eval-every 400] [--sam-steps 600]
"""
import argparse, dataclasses, random, tempfile, time
import numpy as np, torch, torch.nn as nn
from referpix2pix.core import get_preset, register_preset
from referpix2pix.stage1 import plain_referring, pretrain_sam
from referpix2pix.grounder import Grounder, mask_losses
from referpix2pix.templates import build_conversation, Conversation

ORDINALS, RELATIONS = ('first', 'second', 'third', 'fourth', 'fifth'), ('closest', 'above', 'below', 'next', 'of', 'than')
POSITIONS = ('left', 'right', 'top', 'bottom', 'topmost', 'lowest', 'leftmost', 'rightmost', 'middle')

def kind(e:str)->str:
    "Coarse type of a referring expression"
    w = e.split()
    if any(x in w for x in ORDINALS): return 'ordinal'
    if any(x in w for x in RELATIONS): return 'relation'
    if any(x in w for x in POSITIONS): return 'position'
    return 'attribute'

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('world'); ap.add_argument('--text', choices=['words', 'template'], default='words')
    ap.add_argument('--steps', type=int, default=1600); ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--batch-size', type=int, default=16); ap.add_argument('--eval-every', type=int, default=400)
    ap.add_argument('--eval-n', type=int, default=300); ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--sam-steps', type=int, default=0); ap.add_argument('--patch', type=int, default=8)
    a = ap.parse_args()
    torch.set_num_threads(1); torch.manual_seed(a.seed); random.seed(a.seed)
    tiny = get_preset('tiny'); register_preset(dataclasses.replace(tiny, name='probe', grounder={**tiny.grounder, 'sam_patch': a.patch}))
    g = Grounder.build('probe', device='cpu', seed=a.seed); sam, tok = g.sam, g.tokenizer
    if a.sam_steps:
        t0 = time.time()
        with tempfile.TemporaryDirectory() as d: pretrain_sam(g, a.world, d, steps=a.sam_steps, seed=a.seed, progress=False)
        print(f"SAM pre-trained for {a.sam_steps} steps ({time.time() - t0:.0f} s)", flush=True)
    tr, te = plain_referring(a.world, 'train'), plain_referring(a.world, 'test')
    emb, mlp = nn.EmbeddingBag(len(tok), 128, mode='mean'), nn.Sequential(nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, sam.prompt_encoder.embed_dim))
    def ids(e):
        t = e if a.text == 'words' else Conversation([e], build_conversation([e], random).questions, 'paper').render()
        return torch.tensor(tok(t).input_ids)
    def masks(samples):
        px = torch.stack([g.sam_pixels(s['image'])[0] for s in samples]); e = sam.image_encoder(px); pe = sam.prompt_encoder
        dense = pe.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(1, -1, *pe.image_embedding_size)
        out = []
        for i, s in enumerate(samples):
            low, _ = sam.mask_decoder(image_embeddings=e[i:i+1], image_pe=pe.get_dense_pe(), sparse_prompt_embeddings=mlp(emb(ids(s['instructions'][0])[None]))[:, None],
                                      dense_prompt_embeddings=dense, multimask_output=False)
            out.append(sam.postprocess_masks(low, g.sam_pixels(s['image'])[1], s['image'].size[::-1])[0, 0])
        return out
    @torch.no_grad()
    def evaluate():
        r = {}
        for i in range(0, len(te), max(1, len(te) // a.eval_n)):
            s = te[i]; p = masks([s])[0] > 0; t = torch.from_numpy(np.asarray(s['masks'][0], bool))
            r.setdefault(kind(s['instructions'][0]), []).append(float((p & t).sum() / max((p | t).sum(), 1)))
        return {k: round(float(np.mean(v)), 3) for k, v in r.items()} | {'all': round(float(np.mean([x for v in r.values() for x in v])), 3)}
    params = [*sam.parameters(), *emb.parameters(), *mlp.parameters()]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1, (s + 1) / 50))
    t0 = time.time()
    for st in range(1, a.steps + 1):
        b = [tr[random.randrange(len(tr))] for _ in range(a.batch_size)]
        bce, dice = mask_losses(masks(b), [torch.from_numpy(np.asarray(s['masks'][0], bool)) for s in b])
        loss = 2 * bce + 0.5 * dice; opt.zero_grad(); loss.backward(); opt.step(); sched.step()
        if st % a.eval_every == 0: print(f"step {st} ({time.time() - t0:.0f} s): mean IoU by expression type {evaluate()}", flush=True)

if __name__ == '__main__': main()
