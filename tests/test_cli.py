"The command line end to end: every bad input gets one line and a non-zero exit; interrupted sessions keep finished turns."
import io, json, subprocess, sys, contextlib
from pathlib import Path
import numpy as np
import torch
import pytest
from PIL import Image

from referpix2pix.cli import main

@pytest.fixture(scope='session')
def model_dir(tmp_path_factory):
    "A complete pipeline folder from freshly built tiny components (real classes, untrained weights)"
    import torch
    from referpix2pix.grounder import Grounder
    from referpix2pix.editor import EditorModel
    from referpix2pix.pipeline import ReferPix2PixPipeline
    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp('model')/'tiny'
    ReferPix2PixPipeline.from_components(Grounder.build('tiny', device='cpu'), EditorModel.build('tiny', device='cpu')).save_pretrained(d)
    return d

@pytest.fixture(scope='session')
def scene(tmp_path_factory):
    d = tmp_path_factory.mktemp('img'); p = d/'scene.png'
    im = Image.new('RGB', (80, 64), (235, 235, 235)); im.paste((220, 40, 40), (8, 8, 30, 30)); im.save(p)
    return p

def run(args):
    "main() in-process: (exit status, stderr)"
    err = io.StringIO()
    with contextlib.redirect_stderr(err): rc = main([str(a) for a in args])
    return rc, err.getvalue()

def edit(scene, *extra, out=None, model=None, tmp=None):
    return run(['edit', scene, '--out', out or (tmp/'out'), '--steps', 1, '--quiet', *(['--model', model] if model else []), *extra])

def one_line_error(rc, err, want):
    assert rc == 2, (rc, err)
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith('referpix2pix: error:') and want in lines[0], err

def test_missing_file(tmp_path, model_dir):
    one_line_error(*edit(tmp_path/'nope.png', '-i', 'make it red', model=model_dir, tmp=tmp_path), 'no such file')

def test_not_an_image(tmp_path, model_dir):
    (tmp_path/'notes.png').write_text('hello')
    one_line_error(*edit(tmp_path/'notes.png', '-i', 'make it red', model=model_dir, tmp=tmp_path), 'not an image')

def test_truncated_image(tmp_path, model_dir, scene):
    b = scene.read_bytes(); (tmp_path/'cut.png').write_bytes(b[:len(b) // 2])
    one_line_error(*edit(tmp_path/'cut.png', '-i', 'make it red', model=model_dir, tmp=tmp_path), 'cannot decode')

def test_huge_image(tmp_path, model_dir):
    Image.new('L', (9000, 8000)).save(tmp_path/'huge.png')
    one_line_error(*edit(tmp_path/'huge.png', '-i', 'make it red', model=model_dir, tmp=tmp_path), 'too large')

def test_tiny_image(tmp_path, model_dir):
    Image.new('RGB', (10, 10)).save(tmp_path/'tiny.png')
    one_line_error(*edit(tmp_path/'tiny.png', '-i', 'make it red', model=model_dir, tmp=tmp_path), 'too small')

@pytest.mark.parametrize('bad,msg', [('', 'empty'), ('   \t ', 'empty'), ('x' * 400, 'limit is'), ('?!', 'no words')])
def test_bad_instructions(tmp_path, model_dir, scene, bad, msg):
    one_line_error(*edit(scene, '-i', 'make it red', '-i', bad, model=model_dir, tmp=tmp_path), msg)

def test_mask_of_wrong_size(tmp_path, model_dir, scene):
    Image.new('L', (32, 32), 255).save(tmp_path/'m.png')
    one_line_error(*edit(scene, '-i', 'make it red', '--mask', tmp_path/'m.png', model=model_dir, tmp=tmp_path), 'mask is 32x32 but the image is 80x64')

def test_mask_for_missing_turn(tmp_path, model_dir, scene):
    Image.new('L', (80, 64), 255).save(tmp_path/'m.png')
    one_line_error(*edit(scene, '-i', 'make it red', '--mask', f"3:{tmp_path/'m.png'}", model=model_dir, tmp=tmp_path), 'turn 3 does not exist')

@pytest.mark.parametrize('dev,msg', [('tpu', 'Unknown device'), ('cuda:7', 'CUDA'), ('banana', 'Unknown device')])
def test_unknown_device(tmp_path, model_dir, scene, dev, msg):
    if dev.startswith('cuda'):
        import torch
        if torch.cuda.is_available(): pytest.skip('a GPU is present')
    one_line_error(*edit(scene, '-i', 'make it red', '--device', dev, model=model_dir, tmp=tmp_path), msg)

def test_model_folder_not_ours(tmp_path, scene):
    (tmp_path/'sd').mkdir(); (tmp_path/'sd'/'model_index.json').write_text('{"_class_name": "StableDiffusionPipeline"}')
    one_line_error(*edit(scene, '-i', 'make it red', model=tmp_path/'sd', tmp=tmp_path), 'not a ReferPix2PixPipeline')
    (tmp_path/'empty').mkdir()
    one_line_error(*edit(scene, '-i', 'make it red', model=tmp_path/'empty', tmp=tmp_path), 'no model_index.json')

def test_model_folder_incomplete(tmp_path, scene, model_dir):
    import shutil
    shutil.copytree(model_dir, tmp_path/'m'); shutil.rmtree(tmp_path/'m'/'grounder')
    one_line_error(*edit(scene, '-i', 'make it red', model=tmp_path/'m', tmp=tmp_path), 'missing grounder/')

def test_corrupt_weights(tmp_path, scene, model_dir):
    import shutil
    shutil.copytree(model_dir, tmp_path/'m')
    w = next((tmp_path/'m'/'unet').glob('*.safetensors')); w.write_bytes(b'\0' * 100)
    rc, err = edit(scene, '-i', 'make it red', model=tmp_path/'m', tmp=tmp_path)
    assert rc == 2 and err.startswith('referpix2pix: error:') and 'm' in err, err

def test_output_folder_not_writable(tmp_path, model_dir, scene):
    (tmp_path/'file').write_text('x')
    one_line_error(*edit(scene, '-i', 'make it red', model=model_dir, out=tmp_path/'file'/'sub', tmp=tmp_path), 'cannot write')
    one_line_error(*edit(scene, '-i', 'make it red', model=model_dir, out=tmp_path/'file', tmp=tmp_path), 'not a folder')

@pytest.mark.parametrize('mode', ['RGBA', 'LA', 'P', 'I;16', 'CMYK'])
def test_odd_modes_are_converted_and_edited(tmp_path, model_dir, scene, mode):
    im = Image.open(scene).convert('RGBA' if mode in ('RGBA', 'LA') else 'RGB')
    if mode == 'I;16': im = Image.fromarray((np.asarray(im.convert('L')).astype(np.uint16) * 257))
    elif mode != 'RGBA': im = im.convert(mode)
    f = tmp_path/('odd.jpg' if mode == 'CMYK' else 'odd.png'); im.save(f)
    rc, err = edit(f, '-i', 'make the red square blue', model=model_dir, tmp=tmp_path)
    assert rc == 0, err
    out = Image.open(tmp_path/'out'/'turn-1.png'); assert out.mode == 'RGB' and out.size == (80, 64)

def test_edit_writes_every_turn(tmp_path, model_dir, scene):
    rc, err = edit(scene, '-i', 'make the red square blue', '-i', 'now make it bigger', model=model_dir, tmp=tmp_path)
    assert rc == 0, err
    rec = json.loads((tmp_path/'out'/'session.json').read_text())
    assert [t['instruction'] for t in rec['turns']] == ['make the red square blue', 'now make it bigger']
    for f in ['source.png', 'turn-1.png', 'turn-2.png', 'turn-1-mask.png', 'turn-2-overlay.png', 'session.png']: assert (tmp_path/'out'/f).exists(), f

def test_real_command_exits_non_zero_without_traceback(tmp_path):
    exe = Path(sys.executable).parent/'referpix2pix'
    r = subprocess.run([str(exe), 'edit', str(tmp_path/'missing.png'), '-i', 'make it red', '--out', str(tmp_path/'o')], capture_output=True, text=True)
    assert r.returncode == 2 and 'Traceback' not in r.stderr and 'no such file' in r.stderr, r.stderr

def test_help_for_every_subcommand():
    exe = Path(sys.executable).parent/'referpix2pix'
    for sub in [[], ['edit'], ['demo'], ['data'], ['data', 'shapes'], ['train'], ['eval'], ['bench']]:
        r = subprocess.run([str(exe), *sub, '--help'], capture_output=True, text=True)
        assert r.returncode == 0 and 'usage: referpix2pix' in r.stdout, (sub, r.stderr)

# The CLI runs in a child process whose `EditSession.edit` sends the process a real SIGINT at denoising step 2 of turn 2
# (a per-turn hook instead of racing the turns from outside, which flaked on a loaded machine).
SIGINT_IN_TURN_2 = """
import os, signal, sys
from referpix2pix import cli, pipeline
signal.signal(signal.SIGINT, signal.default_int_handler)   # a child of a background job inherits SIGINT ignored: restore Ctrl-C
edit = pipeline.EditSession.edit
def hooked(self, instruction, mask=None, callback_on_step_end=None, **kw):
    if len(self.turns) == 1:
        inner = callback_on_step_end
        def callback_on_step_end(pipe, i, t, kws):
            if i == 2: os.kill(os.getpid(), signal.SIGINT)
            return inner(pipe, i, t, kws) if inner else kws
    return edit(self, instruction, mask=mask, callback_on_step_end=callback_on_step_end, **kw)
pipeline.EditSession.edit = hooked
sys.exit(cli.main(sys.argv[1:]))
"""

def test_interrupted_session_keeps_finished_turns(tmp_path, model_dir, scene):
    "Ctrl-C (SIGINT) during turn 2's denoising leaves turn 1 complete on disk and exits with 130"
    out = tmp_path/'out'
    r = subprocess.run([sys.executable, '-c', SIGINT_IN_TURN_2, 'edit', str(scene), '-i', 'make the red square blue', '-i', 'now remove it',
                        '-i', 'make it green', '--model', str(model_dir), '--out', str(out), '--steps', '8', '--quiet'],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 130, r.stderr
    assert 'interrupted' in r.stderr and 'Traceback' not in r.stderr
    rec = json.loads((out/'session.json').read_text())
    assert len(rec['turns']) == 1
    assert Image.open(out/rec['turns'][0]['image']).size == (80, 64)

def test_eval_writes_the_report(tmp_path, model_dir):
    from referpix2pix.data.shapes import make_world
    make_world(tmp_path/'world', 20, seed=3, workers=1, progress=False)
    rc, err = run(['eval', '--model', model_dir, '--data', tmp_path/'world', '--out', tmp_path/'r'/'eval.json', '--n', 1, '--steps', 2, '--quiet'])
    assert rc == 0, err
    rep = json.loads((tmp_path/'r'/'eval.json').read_text())
    for k in ('referring', 'coref'):
        assert {'giou', 'ciou', 'recall'} <= set(rep['grounding'][k]) and {'psnr', 'l1', 'l2', 'l1_outside_mask', 'l1_inside_mask'} <= set(rep['edit'][k])
    assert rep['timing']['seconds_per_turn'] > 0
    one_line_error(*run(['eval', '--model', model_dir, '--data', tmp_path, '--out', tmp_path/'x.json']), 'not a data folder')

def test_bench_json():
    exe = Path(sys.executable).parent/'referpix2pix'
    r = subprocess.run([str(exe), 'bench', '--steps', '2', '--runs', '1', '--turns', '2', '--threads', '1', '--json'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    rec = json.loads(r.stdout[r.stdout.index('{'):])
    assert rec['ratio_vs_ip2p'] > 0 and 'grounding_turn2_over_turn1' in rec and len(rec['grounding_seconds_per_turn']) == 2

def test_bench_options_json():
    "Speed-up options reach both pipelines, pass the same-seed check, and --train adds both stages' throughput"
    exe = Path(sys.executable).parent/'referpix2pix'
    r = subprocess.run([str(exe), 'bench', '--steps', '2', '--runs', '1', '--turns', '2', '--threads', '1', '--dtype', 'bf16', '--channels-last',
                        '--scheduler', 'dpm++', '--train', '--train-steps', '1', '--json'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    rec = json.loads(r.stdout[r.stdout.index('{'):])
    assert (rec['dtype'], rec['scheduler'], rec['channels_last'], rec['compile']) == ('bfloat16', 'dpm++', True, False)
    assert rec['check']['passed'] and rec['check']['referpix2pix']['mean_abs'] <= rec['check']['tolerance']['mean_abs']
    assert rec['train']['stage1_grounder']['samples_per_s'] > 0 and rec['train']['stage2_editor']['samples_per_s'] > 0
    assert rec['ratio_vs_ip2p'] > 0

def test_bench_refusals(tmp_path):
    "The full preset and fp16 on the CPU, and a bad --data for --train, are one-line errors before anything is built"
    one_line_error(*run(['bench', '--preset', 'full', '--device', 'cpu']), 'run it on a GPU')
    one_line_error(*run(['bench', '--dtype', 'fp16', '--device', 'cpu']), 'fp16 on the CPU')
    one_line_error(*run(['bench', '--train', '--data', tmp_path]), 'not a data folder')

# --- eval: methods (ip2p, llm-sam) and the real benchmarks' protocols on small fixtures ---

@pytest.fixture(scope='session')
def world(tmp_path_factory):
    "A small synthetic world (it carries a MagicBrush table and CoReferEdit sessions)"
    from referpix2pix.data.shapes import make_world
    d = tmp_path_factory.mktemp('world')/'world'; make_world(d, 20, seed=3, workers=1, progress=False)
    return d

@pytest.fixture(scope='session')
def metric_models(tmp_path_factory):
    "Tiny random CLIP / DINO (HF folders) and an LPIPS trunk (torchvision file)"
    from referpix2pix.evaluate import write_tiny_metric_models
    return write_tiny_metric_models(tmp_path_factory.mktemp('metric-models'))

@pytest.fixture(scope='session')
def ip2p_dir(tmp_path_factory):
    "A tiny diffusers StableDiffusionInstructPix2PixPipeline folder (8 channels, untrained)"
    from referpix2pix.editor import EditorModel
    from referpix2pix.evaluate import ip2p_pipeline
    d = tmp_path_factory.mktemp('ip2p')/'ip2p'
    ip2p_pipeline(EditorModel.build('tiny', mask_channels=False, device='cpu')).save_pretrained(d)
    return d

EDIT_KEYS = {'psnr', 'l1', 'l2', 'l1_outside_mask', 'l1_inside_mask'}

def test_eval_ip2p_has_edit_metrics_and_no_grounding(tmp_path, world, ip2p_dir, model_dir):
    rc, err = run(['eval', '--method', 'ip2p', '--model', ip2p_dir, '--data', world, '--out', tmp_path/'ip2p.json', '--n', 1, '--steps', 2, '--quiet'])
    assert rc == 0, err
    rep = json.loads((tmp_path/'ip2p.json').read_text())
    assert rep['grounding'] is None and rep['settings']['method'] == 'ip2p' and any('no grounding' in n for n in rep['notes'])
    for k in ('referring', 'coref'): assert EDIT_KEYS <= set(rep['edit'][k])
    assert rep['timing']['seconds_per_turn'] > 0 and rep['settings']['scheduler'] == 'euler-a'
    rc, err = run(['eval', '--method', 'ip2p', '--model', ip2p_dir, '--data', world, '--out', tmp_path/'dpm.json', '--n', 1, '--steps', 2,
                   '--scheduler', 'dpm++', '--quiet'])
    assert rc == 0, err
    assert json.loads((tmp_path/'dpm.json').read_text())['settings']['scheduler'] == 'dpm++'
    one_line_error(*run(['eval', '--method', 'ip2p', '--data', world, '--out', tmp_path/'x.json']), 'needs --model')
    one_line_error(*run(['eval', '--method', 'ip2p', '--model', ip2p_dir, '--gt-mask', '--data', world, '--out', tmp_path/'x.json']), 'takes no mask')
    one_line_error(*run(['eval', '--method', 'ip2p', '--model', model_dir, '--data', world, '--out', tmp_path/'x.json']), 'not a StableDiffusionInstructPix2PixPipeline')

def test_eval_llm_sam_uses_the_given_grounder(tmp_path, world, model_dir):
    from referpix2pix.grounder import Grounder
    Grounder.build('tiny', device='cpu', seed=1).save_pretrained(tmp_path/'plain-grounder')
    rc, err = run(['eval', '--method', 'llm-sam', '--grounder', tmp_path/'plain-grounder', '--model', model_dir, '--data', world,
                   '--out', tmp_path/'sam.json', '--n', 1, '--steps', 2, '--quiet'])
    assert rc == 0, err
    rep = json.loads((tmp_path/'sam.json').read_text())
    assert rep['settings']['method'] == 'llm-sam' and rep['settings']['grounder'] == str(tmp_path/'plain-grounder')
    for k in ('referring', 'coref'): assert {'giou', 'ciou', 'recall'} <= set(rep['grounding'][k]) and EDIT_KEYS <= set(rep['edit'][k])
    one_line_error(*run(['eval', '--method', 'llm-sam', '--data', world, '--out', tmp_path/'x.json']), 'needs --grounder')
    one_line_error(*run(['eval', '--grounder', tmp_path/'plain-grounder', '--data', world, '--out', tmp_path/'x.json']), 'does not apply to referpix2pix')

PROTOCOL_KEYS = {'magicbrush': ('final_turn', {'l1', 'l2', 'clip_i', 'dino', 'clip_t'}),
                 'coreferedit': ('final_turn', {'global_clip_t', 'local_clip_t', 'l1', 'l2', 'clip_i', 'dino'}),
                 'gqa-inpaint': ('edit', {'l1', 'l2', 'clip_i', 'dino'}),
                 'reason-edit': ('background', {'psnr', 'ssim', 'lpips', 'mse'})}

@pytest.mark.parametrize('protocol', list(PROTOCOL_KEYS))
def test_eval_protocols(tmp_path, world, model_dir, metric_models, protocol):
    from referpix2pix.evaluate import world_gqa_inpaint
    data = world_gqa_inpaint(tmp_path/'gqa', n=4, seed=3) if protocol == 'gqa-inpaint' else world
    models = ['--clip', metric_models['clip']] + (['--lpips-weights', metric_models['lpips']] if protocol == 'reason-edit' else ['--dino', metric_models['dino']])
    rc, err = run(['eval', '--protocol', protocol, '--model', model_dir, '--data', data, '--out', tmp_path/'r.json', '--n', 1, '--steps', 1, '--quiet', *models])
    assert rc == 0, err
    rep = json.loads((tmp_path/'r.json').read_text())
    section, keys = PROTOCOL_KEYS[protocol]
    assert rep['protocol'] == protocol and keys <= set(rep[section]), rep[section]
    assert rep['timing']['seconds_per_turn'] > 0 and rep['models']['clip'] == str(metric_models['clip']) and 'real weights' in rep['models']['note']
    assert rep['grounding']['all']['n'] >= 1

def test_eval_independent_setting_without_feature_models(tmp_path, world, model_dir):
    rc, err = run(['eval', '--protocol', 'magicbrush', '--setting', 'independent', '--no-features', '--model', model_dir, '--data', world,
                   '--out', tmp_path/'r.json', '--n', 1, '--steps', 1, '--quiet'])
    assert rc == 0, err
    rep = json.loads((tmp_path/'r.json').read_text())
    assert rep['setting'] == 'independent' and set(rep['all_turns']) == {'l1', 'l2', 'n'} and rep['all_turns']['n'] == 3 and rep['models'] is None

def test_eval_protocol_errors(tmp_path, world, model_dir):
    base = ['eval', '--model', model_dir, '--out', tmp_path/'x.json', '--quiet']
    one_line_error(*run([*base, '--protocol', 'gqa-inpaint', '--data', world]), 'test_scenes.json')
    one_line_error(*run([*base, '--protocol', 'coreferedit', '--setting', 'independent', '--data', tmp_path/'none']), 'no such')
    one_line_error(*run([*base, '--protocol', 'reason-edit', '--setting', 'independent', '--data', world]), 'applies to the magicbrush and coreferedit protocols')
    one_line_error(*run([*base, '--protocol', 'magicbrush', '--data', world, '--clip', tmp_path/'no-clip']), 'CLIP model: no model folder')
    one_line_error(*run([*base, '--protocol', 'reason-edit', '--data', tmp_path]), 'not a Reason-Edit folder')

# --- train editor --variant: the four editor designs of 10b_smartedit from the command line ---

def test_train_editor_variant_smartedit(tmp_path, world):
    import json
    out = tmp_path/'se'
    rc, err = run(['train', 'editor', '--variant', 'smartedit', '--data', world, '--out', out, '--steps', 2, '--align-steps', 2,
                   '--batch-size', 2, '--eval-n', 1, '--threads', 1, '--quiet', '--interaction', 'mlp'])
    assert rc == 0, err
    rep = json.loads((out/'report.json').read_text())
    assert rep['variant'] == 'smartedit' and rep['interaction'] == 'mlp' and rep['steps'] == 2 and 'all' in rep['edit_gt_mask']
    assert (out/'model'/'smartedit_config.json').exists() and (out/'align').is_dir()
    from referpix2pix.smartedit import load_variant, SmartEditModel
    assert isinstance(load_variant(out), SmartEditModel)

def test_data_shapes_with_reasoning_turns(tmp_path):
    import json
    rc, err = run(['data', 'shapes', '--out', tmp_path/'w', '--images', 6, '--workers', 1, '--quiet', '--reasoning', 1.0])
    assert rc == 0, err
    sessions = json.loads((tmp_path/'w'/'coreferedit'/'sessions.json').read_text())
    kinds = [s['turns'][0]['kind'] for s in sessions]   # a scene with no reasoning expression falls back to referring
    assert len(sessions) == 6 and kinds.count('reasoning') >= 4 and set(kinds) <= {'reasoning', 'referring'}, kinds
    assert all(s['target_object']['expression_type'] == 'reasoning' for s in sessions if s['turns'][0]['kind'] == 'reasoning')
    assert all(t['kind'] == 'coref' for s in sessions for t in s['turns'][1:])

# --- the ablation arms of 11_ablations from the command line ---

def test_train_grounder_ablation_mixtures(tmp_path, world):
    from referpix2pix.stage1 import plain_referring
    from referpix2pix.data.datasets import world_stage1
    base = ['train', 'grounder', '--data', world, '--steps', 1, '--batch-size', 2, '--eval-n', 1, '--qa-steps', 0, '--sam-steps', 0, '--threads', 1, '--quiet']
    reps = {}
    for name, flags in {'full': [], 'plain': ['--plain-referring'], 'no_ref': ['--no-referring'], 'no_coref': ['--no-coref']}.items():
        rc, err = run([*base, '--out', tmp_path/name, *flags]); assert rc == 0, err
        reps[name] = json.loads((tmp_path/name/'report.json').read_text())
    assert (reps['plain']['plain'], reps['plain']['coref']) == (True, False) and reps['plain']['train_samples'] == len(plain_referring(world))
    assert reps['no_ref']['referring'] is False and reps['no_ref']['train_samples'] == len(world_stage1(world, 'train', referring=False))
    assert reps['no_coref']['coref'] is False and reps['full']['train_samples'] > max(reps[k]['train_samples'] for k in ('no_ref', 'no_coref'))

def test_train_grounder_referent_words_option(tmp_path, world):
    "--referent-words sets the auxiliary loss (tiny default 1); 0 trains with the paper's losses alone, logged and checkpointed accordingly"
    from safetensors.torch import load_file
    base = ['train', 'grounder', '--data', world, '--steps', 2, '--batch-size', 2, '--eval-n', 1, '--qa-steps', 0, '--sam-steps', 2, '--threads', 1, '--quiet']
    for name, flags, w in [('default', [], 1.0), ('off', ['--referent-words', '0'], 0.0), ('half', ['--referent-words', '0.5'], 0.5)]:
        rc, err = run([*base, '--out', tmp_path/name, *flags]); assert rc == 0, err
        assert json.loads((tmp_path/name/'report.json').read_text())['referent_words'] == w
        head = [k for k in load_file(tmp_path/name/'checkpoints'/'step-2'/'model.safetensors') if k.startswith('head.')]
        assert bool(head) == (w > 0), (name, head)
        assert ('words' in (tmp_path/name/'metrics.csv').read_text().splitlines()[0]) == (w > 0)

def test_train_grounder_lr_schedule_option(tmp_path, world):
    "The learning rate decays to 0 at the last step by default (cosine) and is recorded; --lr-schedule constant holds it; an unknown schedule is a one-line error"
    base = ['train', 'grounder', '--data', world, '--steps', 20, '--batch-size', 1, '--eval-n', 1, '--sam-steps', 0, '--threads', 1, '--quiet', '--lr', 1e-3]
    def lrs(name): return [float(l.split(',')[2]) for l in (tmp_path/name/'metrics.csv').read_text().splitlines()[1:]]
    rc, err = run([*base, '--out', tmp_path/'cos']); assert rc == 0, err
    lr = lrs('cos'); k = lr.index(max(lr))
    assert max(lr) == pytest.approx(1e-3, rel=0.05) and lr[k:] == sorted(lr[k:], reverse=True) and lr[-1] < 0.02 * max(lr), lr
    assert json.loads((tmp_path/'cos'/'report.json').read_text())['lr_schedule'] == 'cosine'
    rc, err = run([*base, '--out', tmp_path/'const', '--lr-schedule', 'constant']); assert rc == 0, err
    assert set(lrs('const')) == {1e-3}
    one_line_error(*run([*base, '--out', tmp_path/'bad', '--lr-schedule', 'sawtooth']), 'sawtooth')

def test_train_grounder_sam_steps_option(tmp_path, world):
    "--sam-steps pre-trains the tiny SAM on point prompts before stage 1: recorded, it changes the model, and --resume does not repeat it"
    from safetensors.torch import load_file
    base = ['train', 'grounder', '--data', world, '--batch-size', 2, '--eval-n', 1, '--threads', 1, '--quiet']
    rc, err = run([*base, '--out', tmp_path/'sam', '--steps', 2, '--sam-steps', 3]); assert rc == 0, err
    rep = json.loads((tmp_path/'sam'/'report.json').read_text())
    assert rep['sam_pretraining']['steps'] == 3 and 0 < rep['sam_pretraining']['final_dice'] < 1.5
    assert (tmp_path/'sam'/'sam'/'metrics.csv').exists()
    rc, err = run([*base, '--out', tmp_path/'plain', '--steps', 2, '--sam-steps', 0]); assert rc == 0, err
    assert json.loads((tmp_path/'plain'/'report.json').read_text())['sam_pretraining'] is None
    a, b = (load_file(tmp_path/n/'checkpoints'/'step-2'/'model.safetensors') for n in ('sam', 'plain'))
    assert any(not (a[k] == b[k]).all() for k in a if 'mask_decoder' in k)
    rc, err = run([*base, '--out', tmp_path/'sam', '--steps', 4, '--sam-steps', 3, '--resume']); assert rc == 0, err
    assert json.loads((tmp_path/'sam'/'report.json').read_text())['sam_pretraining'] == rep['sam_pretraining']   # kept, not repeated

def test_train_grounder_stage1_options(tmp_path, world):
    "The tiny grounder has the [SEG] heatmap prompt by default (--no-dense-prompt drops it: no f_heat, no heat loss); --referent-target (default expression) is recorded, and a bad one is a one-line error; --semantic adds the category conversations to the mixture; --vision-steps pre-trains the vision tower and --freeze-vision keeps it fixed, both recorded; --new-classes is recorded; --llm-layers deepens the tiny LLM and --llm-hidden widens it, --mask-refine adds the 3x3 refine block to the tiny SAM's decoder, --sam-patch sets the tiny SAM's patch size and --vocab-size its tokenizer's size, all recorded and saved; --refer-turns packs the referring expressions of an image into conversations, recorded; --vision-layers / --vision-hidden size the tiny CLIP tower, recorded and saved; --freeze-sam-encoder keeps SAM's image encoder at its initial weights and serves every batch's embeddings from the cache, recorded; --vision-scenes generated pre-trains the tower on newly generated scenes, recorded; --pointer-loss adds the heatmap's pointer loss (recorded, logged), refused without the heatmap or below 0; --adam-beta2 sets AdamW's second-moment decay of stage 1 (recorded in the report and in the checkpoints' config), refused outside [0, 1); --weight-decay sets its weight decay (recorded in both places), refused below 0"
    from safetensors.torch import load_file
    from referpix2pix.grounder import Grounder
    base = ['train', 'grounder', '--data', world, '--steps', 2, '--batch-size', 2, '--eval-n', 1, '--sam-steps', 0, '--threads', 1, '--quiet']
    rc, err = run([*base, '--out', tmp_path/'dense', '--pointer-loss', 0.5, '--weight-decay', 0.1]); assert rc == 0, err
    rc, err = run([*base, '--out', tmp_path/'sparse', '--no-dense-prompt', '--referent-target', 'instruction', '--semantic',
                    '--vision-steps', 2, '--freeze-vision', '--new-classes', 'dataset', '--llm-layers', 3, '--llm-hidden', 160, '--mask-refine', 2, '--sam-patch', 4, '--vocab-size', 2048, '--refer-turns', 3, '--vision-layers', 3, '--vision-hidden', 96, '--freeze-sam-encoder', '--vision-scenes', 'generated', '--adam-beta2', 0.95]); assert rc == 0, err
    reps = {n: json.loads((tmp_path/n/'report.json').read_text()) for n in ('dense', 'sparse')}
    from referpix2pix.data.datasets import RefCOCO
    assert (reps['dense']['semantic'], reps['sparse']['semantic']) == (False, True)
    wrc = RefCOCO(Path(world)/'refcoco'); packed = len(wrc.refercoco_edit('train')) - len(wrc.refercoco_edit('train', per_conversation=3))
    assert packed > 0 and reps['sparse']['train_samples'] - reps['dense']['train_samples'] == len(wrc.semantic_edit('train')) - packed
    assert (reps['dense']['refer_turns'], reps['sparse']['refer_turns']) == (1, 3)
    assert [(r['vision_layers'], r['vision_hidden']) for r in reps.values()] == [(2, 64), (3, 96)]
    assert (reps['dense']['dense_prompt'], reps['sparse']['dense_prompt']) == (True, False)
    assert (reps['dense']['vision_pretraining'], reps['dense']['freeze_vision'], reps['sparse']['freeze_vision']) == (None, False, True)
    assert reps['sparse']['vision_pretraining']['steps'] == 2 and (tmp_path/'sparse'/'vision'/'pretraining.json').exists()
    assert reps['sparse']['vision_pretraining']['scenes'] == 'generated'
    assert (reps['dense']['referent_target'], reps['sparse']['referent_target']) == ('expression', 'instruction')
    assert (reps['dense']['new_classes'], reps['sparse']['new_classes']) == ('coco', 'dataset')
    assert (reps['dense']['llm_layers'], reps['sparse']['llm_layers']) == (2, 3)
    assert (reps['dense']['llm_hidden'], reps['sparse']['llm_hidden']) == (128, 160)
    assert (reps['dense']['sam_patch'], reps['sparse']['sam_patch']) == (8, 4)
    assert (reps['dense']['mask_refine'], reps['sparse']['mask_refine']) == (0, 2)
    assert (reps['dense']['vocab_size'], reps['sparse']['vocab_size']) == (512, 1067)
    g3 = Grounder.from_pretrained(tmp_path/'sparse'/'grounder')
    assert (g3.llava.config.vision_config.num_hidden_layers, g3.llava.config.vision_config.hidden_size) == (3, 96)
    tc = g3.llava.config.text_config; assert (tc.hidden_size, tc.num_attention_heads, tc.intermediate_size) == (160, 5, 320)
    assert len(g3.llava.model.language_model.layers) == 3 and g3.sam.prompt_encoder.image_embedding_size == (16, 16)
    assert len(g3.tokenizer) == g3.llava.config.text_config.vocab_size == 1067 and g3.tokenizer.tokenize(' the leftmost') == ['Ġthe', 'Ġleftmost']
    assert (reps['dense']['freeze_sam_encoder'], reps['dense']['sam_embedding_cache'], reps['sparse']['freeze_sam_encoder']) == (False, None, True)
    c = reps['sparse']['sam_embedding_cache']; assert c['hits'] + c['misses'] == 2 * 2 and c['images'] == c['misses'] >= 1   # 2 steps of 2 samples
    g0 = Grounder.build('tiny', device='cpu', seed=0, dense_prompt=False, llm_layers=3, llm_hidden=160, mask_refine=2, sam_patch=4, vocab_size=2048, vision_layers=3, vision_hidden=96)
    enc0, enc3 = g0.sam.image_encoder.state_dict(), g3.sam.image_encoder.state_dict()
    assert all(torch.equal(enc0[k], enc3[k]) for k in enc0)   # frozen through stage 1
    assert not all(torch.equal(a, b) for a, b in zip(g0.sam.mask_decoder.state_dict().values(), g3.sam.mask_decoder.state_dict().values()))
    keys = {n: set(load_file(tmp_path/n/'grounder'/'model.safetensors')) for n in ('dense', 'sparse')}
    assert any(k.startswith('f_heat.') for k in keys['dense']) and not any(k.startswith('f_heat.') for k in keys['sparse'])
    assert keys['dense'] - keys['sparse'] == {k for k in keys['dense'] if k.startswith('f_heat.')}
    assert any(k.startswith('f_refine.') for k in keys['sparse']) and not any(k.startswith('f_refine.') for k in keys['dense']) and len(g3.f_refine) == 3
    assert ('heat' in (tmp_path/'dense'/'metrics.csv').read_text().splitlines()[0].split(',')) and 'heat' not in (tmp_path/'sparse'/'metrics.csv').read_text().splitlines()[0].split(',')
    assert Grounder.from_pretrained(tmp_path/'sparse'/'grounder').f_heat is None and Grounder.from_pretrained(tmp_path/'dense'/'grounder').f_heat is not None
    assert (reps['dense']['pointer'], reps['sparse']['pointer']) == (0.5, 0.0)
    assert (reps['dense']['adam_beta2'], reps['sparse']['adam_beta2']) == (0.999, 0.95)
    assert [json.loads((tmp_path/n/'checkpoints'/'step-2'/'config.json').read_text())['adam_betas'] for n in ('dense', 'sparse')] == [[0.9, 0.999], [0.9, 0.95]]
    assert (reps['dense']['weight_decay'], reps['sparse']['weight_decay']) == (0.1, 0.0)
    assert [json.loads((tmp_path/n/'checkpoints'/'step-2'/'config.json').read_text())['weight_decay'] for n in ('dense', 'sparse')] == [0.1, 0.0]
    assert 'pointer' in (tmp_path/'dense'/'metrics.csv').read_text().splitlines()[0].split(',')
    one_line_error(*run([*base, '--out', tmp_path/'bad', '--pointer-loss', 0.5, '--no-dense-prompt']), 'does not have')
    one_line_error(*run([*base, '--out', tmp_path/'bad', '--pointer-loss', -1]), 'pointer: a loss weight')
    one_line_error(*run([*base, '--out', tmp_path/'bad', '--adam-beta2', 1.0]), "adam_beta2: AdamW's second-moment decay, in [0, 1)")
    one_line_error(*run([*base, '--out', tmp_path/'bad', '--weight-decay', -0.1]), "weight_decay: AdamW's weight decay, >= 0")
    one_line_error(*run([*base, '--out', tmp_path/'bad', '--referent-target', 'caption']), 'caption')
    one_line_error(*run([*base, '--out', tmp_path/'bad', '--llm-layers', 0]), 'llm_layers must be at least 1')
    one_line_error(*run([*base, '--out', tmp_path/'bad', '--llm-hidden', 100]), "llm_hidden must be a positive multiple of the LLM's head size 32")
    one_line_error(*run([*base, '--out', tmp_path/'bad', '--sam-patch', 5]), 'sam_patch must divide')
    one_line_error(*run([*base, '--out', tmp_path/'bad', '--mask-refine', -1]), 'mask_refine is a number of 3x3 convolutions')
    one_line_error(*run([*base, '--out', tmp_path/'bad', '--vocab-size', 100]), 'vocab_size must be at least 300')
    one_line_error(*run([*base, '--out', tmp_path/'bad', '--refer-turns', 0]), 'per_conversation must be at least 1')
    one_line_error(*run([*base, '--out', tmp_path/'bad', '--vision-hidden', 90]), 'vision_hidden must be a positive multiple')

def test_train_ema_decay_option(tmp_path, world, model_dir):
    "--ema-decay keeps an EMA of the trainable weights in both stages: recorded in the report and the checkpoints' config, written to every checkpoint's ema.safetensors, and what the saved grounder holds; refused outside [0, 1) and with --variant"
    from safetensors.torch import load_file
    from referpix2pix.grounder import Grounder
    base = ['train', 'grounder', '--data', world, '--steps', 3, '--batch-size', 2, '--eval-n', 1, '--sam-steps', 0, '--threads', 1, '--quiet']
    rc, err = run([*base, '--out', tmp_path/'g', '--ema-decay', 0.5]); assert rc == 0, err
    rep, ck = json.loads((tmp_path/'g'/'report.json').read_text()), tmp_path/'g'/'checkpoints'/'step-3'
    assert rep['ema_decay'] == 0.5 and json.loads((ck/'config.json').read_text())['ema_decay'] == 0.5
    assert json.loads((ck/'trainer_state.json').read_text())['ema']['optimization_step'] == 3
    raw, ema = load_file(ck/'model.safetensors'), load_file(ck/'ema.safetensors')
    saved = dict(Grounder.from_pretrained(tmp_path/'g'/'grounder').named_parameters())
    pairs = [(n, m) for n in ema for m in saved if n == m or n.endswith('.' + m)]   # the loop's names carry the task wrapper's prefix
    assert len(pairs) > 10 and len({n for n, _ in pairs}) == len(pairs) and all(torch.equal(saved[m].detach(), ema[n]) for n, m in pairs)
    assert any(not torch.equal(raw[n], ema[n]) for n in ema)                        # the EMA, not the last raw weights
    rc, err = run(['train', 'editor', '--data', world, '--out', tmp_path/'e', '--editor', model_dir, '--no-comb', '--steps', 2,
                   '--batch-size', 2, '--eval-n', 1, '--threads', 1, '--quiet', '--ema-decay', 0.9]); assert rc == 0, err
    assert json.loads((tmp_path/'e'/'report.json').read_text())['ema_decay'] == 0.9 and (tmp_path/'e'/'checkpoints'/'step-2'/'ema.safetensors').exists()
    one_line_error(*run([*base, '--out', tmp_path/'bad', '--ema-decay', 1.0]), "ema_decay: the weights' EMA decay, in [0, 1)")
    one_line_error(*run(['train', 'editor', '--data', world, '--out', tmp_path/'bad', '--ema-decay', -0.1, '--quiet']), "ema_decay: the weights' EMA decay, in [0, 1)")
    one_line_error(*run(['train', 'editor', '--variant', 'ip2p', '--data', world, '--out', tmp_path/'bad', '--ema-decay', 0.9, '--quiet']), '--ema-decay is for')

def test_train_optimizer_option(tmp_path, world):
    "--optimizer muon trains stage 1 with Muon on the hidden matrices and AdamW on the rest: recorded in the report and the checkpoints' config, both states in optimizer.pt, and a resume keeps it; refused for the editor and with a bad rate"
    base = ['train', 'grounder', '--data', world, '--steps', 4, '--batch-size', 2, '--eval-n', 1, '--sam-steps', 0, '--threads', 1, '--quiet']
    rc, err = run([*base, '--out', tmp_path/'g', '--optimizer', 'muon', '--muon-lr', 0.02]); assert rc == 0, err
    rep, ck = json.loads((tmp_path/'g'/'report.json').read_text()), tmp_path/'g'/'checkpoints'/'step-4'
    assert (rep['optimizer'], rep['muon_lr']) == ('muon', 0.02)
    assert {k: json.loads((ck/'config.json').read_text())[k] for k in ('optimizer', 'muon_lr')} == {'optimizer': 'muon', 'muon_lr': 0.02}
    st = torch.load(ck/'optimizer.pt', weights_only=True)
    assert sorted(st) == ['adamw', 'muon'] and len(st['muon']['state']) > 10 and st['muon']['param_groups'][0]['lr'] == 0.0   # the cosine ends at 0
    rc, err = run([*base, '--out', tmp_path/'g', '--steps', 6, '--optimizer', 'muon', '--muon-lr', 0.02, '--resume']); assert rc == 0, err
    assert (tmp_path/'g'/'checkpoints'/'step-6').exists()
    one_line_error(*run([*base, '--out', tmp_path/'g', '--steps', 8, '--resume']), "this run has optimizer='adamw'")
    one_line_error(*run([*base, '--out', tmp_path/'bad', '--optimizer', 'muon', '--muon-lr', 0]), "muon_lr: Muon's peak learning rate, > 0")
    one_line_error(*run(['train', 'editor', '--data', world, '--out', tmp_path/'bad', '--optimizer', 'muon', '--quiet']), '--optimizer and --muon-lr are for `train grounder`')

def test_train_parallel_muon_pretraining(tmp_path, world):
    "--parallel-pretraining runs the tower's pre-training in a second process and --pretrain-* set both pre-trainings' optimizer and schedule: the records say so, the saved (fixed) tower is the child's; refused for the editor and with a bad rate"
    from safetensors.torch import load_file
    from referpix2pix.grounder import Grounder
    base = ['train', 'grounder', '--data', world, '--steps', 2, '--batch-size', 2, '--eval-n', 1, '--sam-steps', 2, '--vision-steps', 2, '--threads', 2, '--quiet']
    rc, err = run([*base, '--out', tmp_path/'g', '--freeze-vision', '--parallel-pretraining', '--pretrain-optimizer', 'muon', '--pretrain-muon-lr', 5e-3, '--pretrain-schedule', 'cosine']); assert rc == 0, err
    rep = json.loads((tmp_path/'g'/'report.json').read_text())
    assert {k: rep['pretraining'][k] for k in ('optimizer', 'muon_lr', 'schedule', 'parallel')} == dict(optimizer='muon', muon_lr=5e-3, schedule='cosine', parallel=True)
    assert rep['vision_pretraining']['threads'] == 1 and rep['sam_pretraining']['steps'] == 2
    for part in ('sam', 'vision'):   # each pre-training's own checkpoint records Muon
        ck = next((tmp_path/'g'/part/'checkpoints').glob('step-*'))
        assert json.loads((ck/'config.json').read_text())['optimizer'] == 'muon'
    tower, g = load_file(tmp_path/'g'/'vision'/'tower.safetensors'), Grounder.from_pretrained(tmp_path/'g'/'grounder', device='cpu')
    assert all(torch.equal(tower[k], v) for k, v in g.llava.model.vision_tower.state_dict().items())
    one_line_error(*run([*base, '--out', tmp_path/'bad', '--pretrain-optimizer', 'muon', '--pretrain-muon-lr', 0]), "muon_lr: Muon's peak learning rate, > 0")
    one_line_error(*run(['train', 'editor', '--data', world, '--out', tmp_path/'bad', '--parallel-pretraining', '--quiet']), '--parallel-pretraining and --pretrain-* are for `train grounder`')

def test_train_editor_fine_tunes_a_given_editor(tmp_path, world, model_dir):
    from referpix2pix.editor import EditorModel
    rc, err = run(['train', 'editor', '--data', world, '--out', tmp_path/'ft', '--editor', model_dir, '--no-comb', '--steps', 2,
                   '--batch-size', 2, '--eval-n', 1, '--threads', 1, '--quiet'])
    assert rc == 0, err
    rep = json.loads((tmp_path/'ft'/'report.json').read_text())
    assert 'vae_seconds' not in rep and not (tmp_path/'ft'/'vae').exists()   # started from the given editor: no VAE pre-training
    start, tuned = EditorModel.from_pretrained(model_dir, device='cpu'), EditorModel.from_pretrained(tmp_path/'ft'/'editor', device='cpu')
    assert start.vae.config.scaling_factor == tuned.vae.config.scaling_factor
    assert all(a.equal(b) for a, b in zip(start.vae.state_dict().values(), tuned.vae.state_dict().values()))
    assert not all(a.equal(b) for a, b in zip(start.unet.state_dict().values(), tuned.unet.state_dict().values()))
    one_line_error(*run(['train', 'editor', '--data', world, '--out', tmp_path/'x', '--editor', tmp_path/'none', '--quiet']), 'no such folder')

def test_edit_and_eval_grounding_option(tmp_path, model_dir, scene, world):
    "--grounding current grounds each turn on the image it edits: recorded in session.json and in the eval report; first is the default"
    for name, frame in [('f', None), ('c', 'current')]:
        rc, err = edit(scene, '-i', 'make the red square blue', '-i', 'make it green', '--steps', 2, *(['--grounding', frame] if frame else []), model=model_dir, out=tmp_path/name)
        assert rc == 0, err
        assert json.loads((tmp_path/name/'session.json').read_text())['grounding'] == (frame or 'first')
    rc, err = run(['eval', '--model', model_dir, '--data', world, '--out', tmp_path/'cur.json', '--n', 1, '--steps', 2, '--grounding', 'current', '--quiet'])
    assert rc == 0, err
    assert json.loads((tmp_path/'cur.json').read_text())['settings']['grounding'] == 'current'
    with pytest.raises(SystemExit): run(['edit', scene, '-i', 'make it red', '--grounding', 'last'])

def test_edit_scheduler_option(tmp_path, model_dir, scene):
    "--scheduler swaps the sampler: same seed, other images; the deterministic DPM-Solver++ repeats exactly"
    outs = {}
    for name, sched in [('a', 'euler-a'), ('b', 'dpm++'), ('c', 'dpm++'), ('d', 'dpm++-sde')]:
        rc, err = edit(scene, '-i', 'make the red square blue', '--scheduler', sched, '--steps', 3, model=model_dir, out=tmp_path/name)
        assert rc == 0, err
        outs[name] = np.asarray(Image.open(tmp_path/name/'turn-1.png'))
        assert json.loads((tmp_path/name/'session.json').read_text())['scheduler'] == sched   # the session records its sampler
    assert np.array_equal(outs['b'], outs['c'])
    assert not np.array_equal(outs['a'], outs['b']) and not np.array_equal(outs['b'], outs['d'])
    with pytest.raises(SystemExit): run(['edit', scene, '-i', 'make it red', '--scheduler', 'ddim'])
