"""What the step-cost probes share: the bundled recipe's grounder, stage-1 samples of the world, and alternating timing.

`probe_muon_step.py`, `probe_sam_freeze_step.py` and `probe_pretrain_schedule.py` import it (run them as
`python tools/<probe>.py`, which puts this folder on the import path).
"""
import random, time
from referpix2pix.grounder import Grounder
from referpix2pix.data.datasets import world_stage1

RECIPE_SIZES = dict(llm_layers=3, vision_layers=3, vision_hidden=128, sam_patch=4, vocab_size=2048, mask_refine=2)   # the bundled grounder's

def recipe_grounder(freeze_vision:bool=True)->Grounder:
    "A grounder of the bundled recipe's sizes (seed 0; untrained weights, which do not change a step's cost), its vision tower fixed as `--freeze-vision` does"
    g = Grounder.build('tiny', device='cpu', seed=0, **RECIPE_SIZES)
    if freeze_vision: g.llava.model.vision_tower.requires_grad_(False)
    return g

def recipe_samples(world:str, n_batches:int, batch_size:int=16)->list:
    "`n_batches` lists of `batch_size` samples of the world's stage-1 training mixture (the recipe's), drawn with the global `random`"
    ds = world_stage1(world, 'train', semantic=True, refer_turns=3, seed=0)
    idx = list(range(len(ds))); random.shuffle(idx)
    return [[ds[i] for i in idx[b * batch_size:(b + 1) * batch_size]] for b in range(n_batches)]

def time_alternating(arms:dict, # name -> (task, prepared batches, optimizer)
                     blocks:int)->dict:
    "Seconds of forward + backward + optimizer step per batch, and of the optimizer step alone, for each arm; the arms alternate in blocks over their batches so that drift in the machine's speed falls on all (block 0 warms up and is not kept)"
    times = {k: dict(step=[], opt=[]) for k in arms}
    for blk in range(blocks + 1):
        for k, (task, batches, opt) in arms.items():
            for b in batches:
                t0 = time.perf_counter(); task.training_step(b)['loss'].backward()
                t1 = time.perf_counter(); opt.step(); t2 = time.perf_counter(); opt.zero_grad(set_to_none=True)
                if blk: times[k]['step'].append(t2 - t0); times[k]['opt'].append(t2 - t1)
    return times
