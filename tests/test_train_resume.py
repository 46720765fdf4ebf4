"""Exact resume of referpix2pix.train.train, including after SIGKILL (fault injection).

The reference is an uninterrupted run; every interrupted-and-resumed run must end with bit-identical
parameters (torch.equal) and a metrics.csv whose steps appear once each, in order.
"""
import os, signal, subprocess, sys, time
from pathlib import Path
import pytest
import torch
from safetensors.torch import load_file

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import train_script as S  # noqa: E402
import referpix2pix.train as T  # noqa: E402

STEPS = 24  # S.config: checkpoint every 4 steps, a metrics row every step


@pytest.fixture(autouse=True)
def one_thread():
    "Same thread count as the subprocesses, so float results match bit for bit"
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    "Parameters and metrics of an uninterrupted run"
    n = torch.get_num_threads(); torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp('straight')
        m = S.model(); res = T.train(m, S.dataset(), cfg=S.config(out))
    finally: torch.set_num_threads(n)
    return {k: v.detach().clone() for k, v in m.state_dict().items()}, res


def assert_same(state, ref):
    assert state.keys() == ref.keys()
    diff = [k for k in ref if not torch.equal(state[k], ref[k])]
    assert not diff, f'differs from the uninterrupted run: {diff}'


def assert_clean_metrics(out, ref_res):
    rows = T.read_metrics(Path(out)/'metrics.csv')
    steps = [r['step'] for r in rows]
    assert steps == list(range(1, STEPS + 1)), steps
    assert [r['loss'] for r in rows] == [r['loss'] for r in ref_res['history']]


def run_script(*args, **kw):
    env = {**os.environ, 'PYTHONPATH': str(HERE.parent) + os.pathsep + os.environ.get('PYTHONPATH', '')}
    return subprocess.Popen([sys.executable, str(HERE/'train_script.py'), 'single', *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)


def test_stop_and_resume_equals_straight_run(reference, tmp_path):
    ref, ref_res = reference
    assert ref_res['step'] == STEPS and ref_res['history'][-1]['loss'] < ref_res['history'][0]['loss']
    T.train(S.model(), S.dataset(), cfg=S.config(tmp_path, stop_at=10))       # stops after step 10 (checkpointed)
    assert T.latest_checkpoint(tmp_path).name == 'step-10'
    torch.manual_seed(1234)                                                   # resume must not depend on the caller's RNG
    m = S.model()                                                             # frozen base weights as before,
    with torch.no_grad():                                                     # trainable ones scrambled: the checkpoint restores them
        for q in m.trainable_parameters(): q.normal_()
    res = T.train(m, S.dataset(), cfg=S.config(tmp_path, resume='latest'))
    assert res['steps_run'] == STEPS - 10
    assert_same(m.state_dict(), ref)
    assert_clean_metrics(tmp_path, ref_res)


def test_resume_from_explicit_checkpoint_path(reference, tmp_path):
    ref, _ = reference
    T.train(S.model(), S.dataset(), cfg=S.config(tmp_path/'a', stop_at=8))
    m = S.model()                                                             # a new out_dir, resuming from another run's step-8
    T.train(m, S.dataset(), cfg=S.config(tmp_path/'b', resume=str(tmp_path/'a'/'checkpoints'/'step-8')))
    assert_same(m.state_dict(), ref)


def test_sigkill_mid_run_then_resume(reference, tmp_path):
    "Kill the process from outside at an arbitrary point after a few checkpoints, resume, compare"
    ref, ref_res = reference
    p = run_script('--out', str(tmp_path), '--delay', '0.01')                # ~0.1 s per step
    deadline = time.time() + 120
    while time.time() < deadline:
        rows = T.read_metrics(tmp_path/'metrics.csv')
        if rows and rows[-1]['step'] >= 10: break
        if p.poll() is not None: pytest.fail('training finished before it could be killed:\n' + p.stdout.read().decode()[-2000:])
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL); p.wait()
    assert p.returncode == -signal.SIGKILL
    killed_at = T.read_metrics(tmp_path/'metrics.csv')[-1]['step']
    last = T.latest_checkpoint(tmp_path)
    assert last is not None and int(last.name.split('-')[1]) <= killed_at < STEPS
    m = S.model()
    T.train(m, S.dataset(), cfg=S.config(tmp_path, resume='latest'))
    assert_same(m.state_dict(), ref)
    assert_clean_metrics(tmp_path, ref_res)                                   # rows logged after the checkpoint were not duplicated
    assert not [d for d in (tmp_path/'checkpoints').iterdir() if d.name.startswith('.')]


def test_sigkill_while_writing_checkpoint(reference, tmp_path):
    "The process dies after writing most of step-12's files: resume must ignore the half checkpoint"
    ref, ref_res = reference
    p = run_script('--out', str(tmp_path), '--die-in-checkpoint', '12')
    out, _ = p.communicate(timeout=300)
    assert p.returncode == -signal.SIGKILL, out.decode()[-2000:]
    ck = tmp_path/'checkpoints'
    assert (ck/'.tmp-step-12').is_dir() and (ck/'.tmp-step-12'/'model.safetensors').exists()
    assert not (ck/'step-12').exists()
    assert T.latest_checkpoint(tmp_path).name == 'step-8'
    with pytest.raises(T.CheckpointError, match='incomplete checkpoint'):
        T.check_checkpoint(ck/'.tmp-step-12')
    rows = T.read_metrics(tmp_path/'metrics.csv'); assert rows[-1]['step'] == 12   # logged before the checkpoint
    m = S.model()
    T.train(m, S.dataset(), cfg=S.config(tmp_path, resume='latest'))
    assert_same(m.state_dict(), ref)
    assert_clean_metrics(tmp_path, ref_res)
    assert not (ck/'.tmp-step-12').exists() and (ck/'step-12').is_dir()


def test_checkpoint_contents_are_pickle_free(reference, tmp_path):
    T.train(S.model(), S.dataset(), cfg=S.config(tmp_path, stop_at=4))
    ck = T.latest_checkpoint(tmp_path)
    assert sorted(p.name for p in ck.iterdir()) == sorted(T.REQUIRED_FILES)
    sd = load_file(ck/'model.safetensors')
    assert 'stem.weight' not in sd and 'down1.1.running_mean' in sd          # trainable + buffers, not frozen weights
    torch.load(ck/'optimizer.pt', weights_only=True)                           # loads without arbitrary pickle
    st = T.check_checkpoint(ck)
    assert (st['step'], st['epoch'], st['position']) == (4, 0, 4)


def test_bad_resume_paths_raise_clear_errors(tmp_path):
    T.train(S.model(), S.dataset(), cfg=S.config(tmp_path/'run', stop_at=4))
    ck = tmp_path/'run'/'checkpoints'/'step-4'
    cfg = lambda r: S.config(tmp_path/'new', resume=str(r))
    with pytest.raises(T.CheckpointError, match='no such checkpoint'): T.train(S.model(), S.dataset(), cfg=cfg(tmp_path/'nope'))
    (tmp_path/'junk').mkdir(); (tmp_path/'junk'/'a.txt').write_text('x')
    with pytest.raises(T.CheckpointError, match='not a training checkpoint'): T.train(S.model(), S.dataset(), cfg=cfg(tmp_path/'junk'))
    with pytest.raises(T.CheckpointError, match='shape mismatch'):
        T.train(T.TinySegNet(width=4), S.dataset(), cfg=cfg(ck))
    with pytest.raises(T.CheckpointError, match='missing 2 tensor'):
        T.train(T.TinySegNet(width=8, freeze_stem=False), S.dataset(), cfg=cfg(ck))
    (ck/'scheduler.json').unlink()
    with pytest.raises(T.CheckpointError, match='incomplete checkpoint, missing scheduler.json'): T.train(S.model(), S.dataset(), cfg=cfg(ck))
    with pytest.raises(T.TrainConfigError, match='already holds checkpoints'): T.train(S.model(), S.dataset(), cfg=S.config(tmp_path/'run'))


def test_grounder_recipe_resumes_exactly(tmp_path):
    "The stage-1 recipe (SAM pre-training, referent-words head, cosine schedule): stopped after step 2 and resumed, it ends where 4 uninterrupted steps end"
    from referpix2pix.data.shapes import make_world
    from referpix2pix.stage1 import train_grounder
    make_world(tmp_path/'world', 16, seed=3, workers=1, progress=False)
    kw = dict(batch_size=2, eval_n=1, qa_steps=0, sam_steps=2, checkpoint_every=2, progress=False, threads=1, warmup=2, steps=4)
    train_grounder(tmp_path/'world', tmp_path/'a', **kw)
    r1 = train_grounder(tmp_path/'world', tmp_path/'b', stop_at=2, **kw)
    r2 = train_grounder(tmp_path/'world', tmp_path/'b', resume='latest', **kw)
    assert r1['sam_pretraining']['steps'] == 2 and r2['sam_pretraining'] == r1['sam_pretraining']   # not repeated, still reported
    a, b = (load_file(tmp_path/r/'checkpoints'/'step-4'/'model.safetensors') for r in ('a', 'b'))
    assert a.keys() == b.keys() and any(k.startswith('head.') for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:5]
