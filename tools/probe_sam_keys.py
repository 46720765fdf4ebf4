"""Does the [SEG] heatmap select shapes better with keys from SAM's image encoder? (07d, seventh round)

The tiny grounder's heatmap (`04_grounder`, `dense_prompt`) scores the LLM's image-token states against the [SEG]
query. This probe adds a second key, a linear map of SAM's image embedding at the same position, zero-initialised (so
training starts from the preset's model): k = k_llm(h_img) + k_sam(E_SAM(x)). SAM's encoder sees the pixels
without the LLM's causal mask and is pre-trained on the world's objects (`pretrain_sam`). The heat loss now also
trains it.

It patches `Grounder` for this process only, so it applies only to square images, where CLIP's centred-square frame
and SAM's top-left frame are the same (the synthetic world). Runs load only through this tool.

  train:      python tools/probe_sam_keys.py WORLD OUT --steps 2500 [--semantic] [--lr 1e-3]
  eval only:  python tools/probe_sam_keys.py WORLD OUT --eval-only

Both write OUT/turn1_kinds.json: turn 1 of every test session sorted into right (IoU >= 0.5) / referent + others /
wrong object / blob, by expression type (as 07d's error analysis).
"""
import argparse, json, math
from pathlib import Path
import numpy as np, torch, torch.nn as nn
from referpix2pix.grounder import Grounder

_from_config, _decode = Grounder.from_config.__func__, Grounder.decode_masks

def _with_sam_keys(cls, config, tokenizer=None, empty=False, seed=0):
    g = _from_config(cls, config, tokenizer, empty=empty, seed=seed)
    if g.f_heat is not None:
        ks = nn.Linear(config.sam['prompt_dim'], g.llava.config.text_config.hidden_size)
        nn.init.zeros_(ks.weight); nn.init.zeros_(ks.bias); g.f_heat['ks'] = ks
    return g

def _decode_masks(self, seg_hidden, image_embedding, *a, **k):
    self._sam_tokens = image_embedding[0].flatten(1).T   # [h*w, C], row-major like CLIP's patches
    return _decode(self, seg_hidden, image_embedding, *a, **k)

def _heat_logits(self, seg_hidden, image_tokens):
    q, key = self.f_heat['q'](seg_hidden), self.f_heat['k'](image_tokens)
    if 'ks' in self.f_heat: key = key + self.f_heat['ks'](self._sam_tokens.to(key.dtype))
    return q @ key.T / math.sqrt(q.shape[-1])

Grounder.from_config = classmethod(_with_sam_keys); Grounder.decode_masks = _decode_masks; Grounder.heat_logits = _heat_logits

def turn1_kinds(g, world:Path)->dict:
    "Turn-1 outcome counts by expression type on the test split (`stage1.turn1_outcomes`)"
    from collections import Counter
    from referpix2pix.stage1 import turn1_outcomes
    return {t: dict(Counter(v)) for t, v in turn1_outcomes(g, world).items()}

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('world', type=Path); ap.add_argument('out', type=Path)
    ap.add_argument('--steps', type=int, default=2500); ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--sam-steps', type=int, default=600); ap.add_argument('--eval-every', type=int, default=500)
    ap.add_argument('--semantic', action='store_true'); ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--eval-only', action='store_true', help="score OUT/grounder (a run of this tool) without training")
    a = ap.parse_args(); torch.set_num_threads(a.threads)
    if not a.eval_only:
        from referpix2pix.stage1 import train_grounder
        r = train_grounder(a.world, a.out, steps=a.steps, sam_steps=a.sam_steps, lr=a.lr, eval_every=a.eval_every,
                           semantic=a.semantic, threads=a.threads, progress=False)
        print(json.dumps(r['grounding'], indent=1))
    g = Grounder.from_pretrained(a.out/'grounder', device='cpu'); g.eval()
    if 'ks' not in g.f_heat: raise SystemExit(f"{a.out/'grounder'}: no SAM key (not a run of this tool)")
    kinds = turn1_kinds(g, a.world); (a.out/'turn1_kinds.json').write_text(json.dumps(kinds, indent=1))
    print(json.dumps({t: f"{d.get('right', 0)}/{sum(d.values())}" for t, d in kinds.items()}))
