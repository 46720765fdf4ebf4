"""Does torch.compile make the bundled grounder's stage-1 step cheaper on a CPU? (07d, twentieth round)

Builds a grounder with the bundled recipe's sizes (3-layer LLM, 3-layer tower 128 wide and fixed, SAM patch 4, the
2048-token tokenizer, the 2-layer refine block; untrained weights: the step's cost does not depend on them), draws 30
stage-1 batches of 16 from the world's training mixture (`--semantic`, `--refer-turns 3`, the referent-words loss),
and times forward + backward + AdamW:

  --mode eager     no compilation (the package's path)
  --mode layers    `torch.compile` of each Llama decoder layer and each block of SAM's image encoder (regional
                   compilation: the Python around them - batching, the heatmap, the losses - stays eager)
  --mode modules   `torch.compile` of the whole Llama, SAM's image encoder and its mask decoder

The first 10 steps (compilation included) are timed apart from the next 20. Sequence lengths change from batch to
batch, so by default the graphs are compiled shape-generic (`dynamic=True`); `--static` recompiles per length.

Usage: python tools/probe_compile.py WORLD [--mode layers] [--static] [--threads 2]
"""
import argparse, random, time
import torch
from referpix2pix.grounder import Grounder
from referpix2pix.stage1 import world_stage1, ReferentWordsTask

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('world'); ap.add_argument('--mode', choices=['eager', 'layers', 'modules'], default='eager')
    ap.add_argument('--static', action='store_true'); ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads); random.seed(0); torch.manual_seed(0)
    g = Grounder.build('tiny', device='cpu', seed=0, llm_layers=3, vision_layers=3, vision_hidden=128, sam_patch=4, vocab_size=2048, mask_refine=2)
    g.llava.model.vision_tower.requires_grad_(False)   # --freeze-vision
    task = ReferentWordsTask(g, 1.0, 'expression')
    dyn = not a.static
    if a.mode == 'layers':
        for m in [*g.llava.model.language_model.layers, *g.sam.image_encoder.blocks]: m.compile(dynamic=dyn)
    elif a.mode == 'modules':
        for m in (g.llava.model.language_model, g.sam.image_encoder, g.sam.mask_decoder): m.compile(dynamic=dyn)
    ds = world_stage1(a.world, 'train', semantic=True, refer_turns=3, seed=0)
    idx = list(range(len(ds))); random.shuffle(idx)
    batches = [task.prepare_batch([ds[i] for i in idx[b * 16:(b + 1) * 16]], rng=random) for b in range(30)]
    opt = torch.optim.AdamW([p for p in task.parameters() if p.requires_grad], lr=1e-4)
    def step(b):
        task.training_step(b)['loss'].backward(); opt.step(); opt.zero_grad(set_to_none=True)
    t = time.perf_counter()
    for b in batches[:10]: step(b)
    first = time.perf_counter() - t
    t = time.perf_counter()
    for b in batches[10:]: step(b)
    print(f"{a.mode} ({'static' if a.static else 'dynamic'} shapes, {a.threads} threads): first 10 steps {first:.1f} s, "
          f"then {(time.perf_counter() - t) / 20:.3f} s a step")
