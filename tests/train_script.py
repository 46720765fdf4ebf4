"""Training script driven by tests/test_train_resume.py and tests/test_train_distributed.py.

Runs `referpix2pix.train.train` on the TinySegNet / DiscDataset task in its own process, so tests can
kill it (SIGKILL from outside, or from inside while a checkpoint is being written) or launch it on
several processes (`python -m torch.distributed.run --nproc_per_node 2 tests/train_script.py dist ...`).
"""
import argparse, os, signal, sys, time
from pathlib import Path
import torch
from safetensors.torch import save_file

import referpix2pix.train as T


def config(out, **kw):
    "The settings every test run shares (tests/test_train_*.py build the same one in-process)"
    base = dict(out_dir=str(out), max_steps=24, batch_size=8, lr=3e-3, warmup_steps=3, lr_schedule='cosine',
                checkpoint_every=4, log_every=1, progress=False, device='cpu', tensorboard=False, keep_last_n=None)
    base.update({k: v for k, v in kw.items() if v is not None})
    return T.TrainConfig(**base)


def model(seed=0):
    torch.manual_seed(seed)
    return T.TinySegNet(width=8)


def dataset(): return T.DiscDataset(256)


class SlowData(torch.utils.data.Dataset):
    "The same samples, delivered slowly, so that a kill from outside lands in the middle of the run"
    def __init__(self, ds, delay): self.ds, self.delay = ds, delay
    def __len__(self): return len(self.ds)
    def __getitem__(self, i): time.sleep(self.delay); return self.ds[i]


def save_params(m, path):
    save_file({k: v.detach().contiguous().clone() for k, v in m.state_dict().items()}, str(path))


def single(a):
    "One process: train, optionally dying (SIGKILL) while writing the checkpoint of step `die_in_checkpoint`"
    if a.die_in_checkpoint:
        orig = T.save_json
        def dying_save_json(obj, path):
            if Path(path).name == 'trainer_state.json' and Path(path).parent.name == f'.tmp-step-{a.die_in_checkpoint}':
                os.kill(os.getpid(), signal.SIGKILL)   # killed mid-checkpoint: most files written, state not
            return orig(obj, path)
        T.save_json = dying_save_json
    m = model()
    ds = SlowData(dataset(), a.delay) if a.delay else dataset()
    T.train(m, ds, cfg=config(a.out, stop_at=a.stop_at, resume=a.resume))
    if a.save: save_params(m, a.save)


def dist(a):
    "Two (or more) processes: a straight run, then a stopped-and-resumed run; every rank saves its parameters"
    rank = int(os.environ.get('RANK', '0'))
    out = Path(a.out)
    def fresh():
        m = model()
        with torch.no_grad():                   # ranks start from different trainable weights: DDP must sync them
            for p in m.trainable_parameters(): p.add_(0.01 * rank)
        return m
    m = fresh(); save_params(m, out/f'init-{rank}.safetensors')
    res = T.train(m, dataset(), cfg=config(out/'straight', max_steps=a.steps, checkpoint_every=a.steps))
    save_params(m, out/f'straight-{rank}.safetensors')
    T.train(fresh(), dataset(), cfg=config(out/'split', max_steps=a.steps, checkpoint_every=a.steps, stop_at=a.steps // 2))
    m = fresh(); T.train(m, dataset(), cfg=config(out/'split', max_steps=a.steps, checkpoint_every=a.steps, resume='latest'))
    save_params(m, out/f'resumed-{rank}.safetensors')
    if rank == 0: (out/'samples_per_s.txt').write_text(f"{res['samples_per_s']:.2f}")


if __name__ == '__main__':
    torch.set_num_threads(1)  # same float results as the tests' in-process runs; 2 ranks on 2 cores do not fight
    p = argparse.ArgumentParser()
    p.add_argument('mode', choices=['single', 'dist'])
    p.add_argument('--out', required=True)
    p.add_argument('--stop-at', type=int)
    p.add_argument('--resume')
    p.add_argument('--save')
    p.add_argument('--delay', type=float, default=0.0, help='seconds per sample')
    p.add_argument('--die-in-checkpoint', type=int)
    p.add_argument('--steps', type=int, default=8)
    a = p.parse_args()
    single(a) if a.mode == 'single' else dist(a)
