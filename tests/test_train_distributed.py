"""Two CPU processes (gloo, launched with torchrun) train TinySegNet through referpix2pix.train.train.

Ranks start from *different* trainable weights; DDP must broadcast rank 0's and keep every parameter
identical across ranks, the weights must move away from their initial values, and a two-process run
stopped at half time and resumed must end exactly where the uninterrupted two-process run ends.
"""
import json, os, subprocess, sys
from pathlib import Path
import pytest
import torch
from safetensors.torch import load_file

HERE = Path(__file__).resolve().parent
STEPS = 8


@pytest.fixture(scope='module')
def run2(tmp_path_factory):
    out = tmp_path_factory.mktemp('dist')
    env = {**os.environ, 'PYTHONPATH': str(HERE.parent) + os.pathsep + os.environ.get('PYTHONPATH', ''), 'OMP_NUM_THREADS': '1'}
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
           str(HERE/'train_script.py'), 'dist', '--out', str(out), '--steps', str(STEPS)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    return out


def load(out, name):
    return load_file(str(out/f'{name}.safetensors'))


def param_names():
    sys.path.insert(0, str(HERE)); import train_script as S
    return [n for n, _ in S.model().named_parameters()], [n for n, p in S.model().named_parameters() if p.requires_grad]


def test_parameters_identical_across_ranks_and_trained(run2):
    names, trainable = param_names()
    i0, i1, s0, s1 = (load(run2, n) for n in ('init-0', 'init-1', 'straight-0', 'straight-1'))
    assert any(not torch.equal(i0[k], i1[k]) for k in trainable)            # the ranks really started apart
    assert all(torch.equal(s0[k], s1[k]) for k in names), [k for k in names if not torch.equal(s0[k], s1[k])]
    assert all(not torch.equal(s0[k], i0[k]) for k in trainable)            # every trainable tensor moved
    assert all(torch.equal(s0[k], i0[k]) for k in set(names) - set(trainable))  # the frozen stem did not


def test_two_process_resume_is_exact(run2):
    s0, r0, r1 = (load(run2, n) for n in ('straight-0', 'resumed-0', 'resumed-1'))
    assert all(torch.equal(s0[k], r0[k]) for k in s0), [k for k in s0 if not torch.equal(s0[k], r0[k])]
    names, _ = param_names()
    assert all(torch.equal(r0[k], r1[k]) for k in names)


def test_checkpoint_holds_every_rank_rng_and_one_metrics_file(run2):
    sys.path.insert(0, str(HERE.parent)); import referpix2pix.train as T
    ck = T.latest_checkpoint(run2/'split')
    assert ck.name == f'step-{STEPS}'
    names = {p.name for p in ck.iterdir()}
    assert {'rng-0.safetensors', 'rng-0.json', 'rng-1.safetensors', 'rng-1.json'} <= names
    st = T.check_checkpoint(ck)
    assert st['world_size'] == 2 and st['global_batch'] == 16 and st['samples_seen'] == 16 * STEPS
    steps = [r['step'] for r in T.read_metrics(run2/'split'/'metrics.csv')]
    assert steps == list(range(1, STEPS + 1))
    assert float((run2/'samples_per_s.txt').read_text()) > 0



@pytest.fixture(scope='module')
def world48(tmp_path_factory):
    sys.path.insert(0, str(HERE.parent))
    from referpix2pix.data.shapes import make_world
    world = tmp_path_factory.mktemp('world')/'world'
    make_world(world, 48, seed=3, workers=1, progress=False)   # enough objects for a global batch of the vision pre-training (64 x 2)
    return world


def cli2(*args):
    "`referpix2pix ARGS` under torchrun, two CPU processes (gloo)"
    import shutil
    exe = shutil.which('referpix2pix', path=str(Path(sys.executable).parent)) or shutil.which('referpix2pix')   # the installed command
    assert exe, "the referpix2pix command is not installed beside this Python"
    env = {**os.environ, 'PYTHONPATH': str(HERE.parent) + os.pathsep + os.environ.get('PYTHONPATH', ''), 'OMP_NUM_THREADS': '1'}
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', exe, *map(str, args)],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    return r


def test_two_process_grounder_from_the_command_line(tmp_path, world48):
    """`referpix2pix train grounder` under a two-process launch: the SAM and vision pre-trainings and stage 1 run as DDP
    (their steps leave some trainable parameters without gradients), rank 0 alone saves, evaluates and prints; one
    metrics file, a two-rank checkpoint; stage 1 with --optimizer muon (Muon steps on the all-reduced gradients)"""
    import referpix2pix.train as T
    out = tmp_path/'run'
    r = cli2('train', 'grounder', '--data', world48, '--out', out, '--steps', 3, '--batch-size', 2, '--sam-steps', 2,
             '--vision-steps', 2, '--freeze-vision', '--eval-n', 2, '--threads', 1, '--quiet', '--optimizer', 'muon', '--muon-lr', 0.01)
    assert r.stdout.count('model saved to') == 1, r.stdout   # rank 0 prints the report, once
    rep = json.loads((out/'report.json').read_text())
    assert rep['grounding']['referring']['n'] > 0 and rep['sam_pretraining']['steps'] == 2 and rep['vision_pretraining']['steps'] == 2
    assert (out/'grounder'/'model.safetensors').exists()
    st = T.check_checkpoint(T.latest_checkpoint(out/'checkpoints'))
    assert st['world_size'] == 2 and st['global_batch'] == 4 and st['samples_seen'] == 4 * 3
    assert [row['step'] for row in T.read_metrics(out/'metrics.csv')] == [1, 2, 3]
    opt = torch.load(T.latest_checkpoint(out/'checkpoints')/'optimizer.pt', weights_only=True)
    assert rep['optimizer'] == 'muon' and sorted(opt) == ['adamw', 'muon'] and len(opt['muon']['state']) > 10


def test_two_process_editor_from_the_command_line(tmp_path, world48):
    "`referpix2pix train editor` under a two-process launch: its VAE pre-training and stage 2 run as DDP, rank 0 alone evaluates and prints; with --ema-decay, the checkpoint holds the EMA"
    import referpix2pix.train as T
    out = tmp_path/'run'
    r = cli2('train', 'editor', '--data', world48, '--out', out, '--steps', 3, '--batch-size', 2, '--vae-steps', 2, '--eval-n', 2, '--threads', 1, '--quiet', '--ema-decay', 0.9)
    assert r.stdout.count('editor saved to') == 1, r.stdout
    assert json.loads((out/'report.json').read_text())['edit_gt_mask']['all']['n'] > 0 and (out/'editor').is_dir()
    ck = T.latest_checkpoint(out/'checkpoints'); st = T.check_checkpoint(ck)
    assert st['world_size'] == 2 and st['ema']['optimization_step'] == 3 and (ck/'ema.safetensors').exists()
