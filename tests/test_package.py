"Packaging, README, docs: what does not belong in a notebook."
import importlib, json, os, pkgutil, re, subprocess, sys, sysconfig, zipfile
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]

def all_modules():
    import referpix2pix
    return ['referpix2pix'] + [m.name for m in pkgutil.walk_packages(referpix2pix.__path__, 'referpix2pix.')]

def test_every_module_imports():
    mods = all_modules()
    assert {'referpix2pix.core', 'referpix2pix.templates'} <= set(mods)
    for m in mods: importlib.import_module(m)

def test_readme_in_sync_with_index():
    r = subprocess.run([sys.executable, 'tools/make_readme.py', '--check'], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr

def test_readme_has_two_setup_commands():
    s = (ROOT/'README.md').read_text()
    main = re.search(r'<!-- main-command -->\s*```(?:sh|bash)?\n(.*?)```', s, re.S)
    test = re.search(r'<!-- test-command -->\s*```(?:sh|bash)?\n(.*?)```', s, re.S)
    assert main and test, 'README needs the main-job and test command blocks'
    assert 'pip install' in main.group(1) and 'referpix2pix' in main.group(1)
    assert 'nbdev_test' in test.group(1) and 'pytest' in test.group(1)

@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    d = tmp_path_factory.mktemp('wheel')
    r = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '-q', '-w', str(d), str(ROOT)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    whl = list(d.glob('referpix2pix-*.whl')); assert len(whl) == 1
    return whl[0]

def test_wheel_contains_every_subpackage_and_asset(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    src = {str(p.relative_to(ROOT)) for p in (ROOT/'referpix2pix').rglob('*') if p.is_file() and '__pycache__' not in p.parts and p.suffix != '.pyc'}
    missing = src - names
    assert not missing, f'files missing from the wheel: {sorted(missing)[:10]}'
    assert any(n.endswith('entry_points.txt') for n in names)

def test_wheel_installs_into_fresh_venv_and_imports(wheel, tmp_path):
    "A fresh venv that sees our dependencies (through a .pth file) but not the source tree"
    venv = tmp_path/'venv'
    subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True)
    py = venv/'bin'/'python'
    site = subprocess.run([str(py), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], capture_output=True, text=True, check=True).stdout.strip()
    deps = [p for p in sys.path if p.endswith('site-packages') and 'referpix2pix' not in p]
    (Path(site)/'_deps.pth').write_text('\n'.join(deps) + '\n')
    r = subprocess.run([str(py), '-m', 'pip', 'install', '--no-deps', '--no-index', '-q', str(wheel)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    code = ("import importlib, pkgutil, referpix2pix, pathlib;"
            "mods=[m.name for m in pkgutil.walk_packages(referpix2pix.__path__, 'referpix2pix.')];"
            "[importlib.import_module(m) for m in mods];"
            "print(pathlib.Path(referpix2pix.__file__).parent); print(len(mods))")
    r = subprocess.run([str(py), '-c', code], cwd=tmp_path, capture_output=True, text=True, env={**os.environ, 'PYTHONPATH': ''})
    assert r.returncode == 0, r.stderr[-3000:]
    where, n = r.stdout.split()
    assert str(venv) in where and int(n) >= 2     # imported from the installed wheel, not the checkout
    assert (venv/'bin'/'referpix2pix').exists()   # console script installed

def test_docs_site_builds_with_api_docs_and_figures(tmp_path):
    out = tmp_path/'site'
    r = subprocess.run([sys.executable, 'tools/build_docs.py', '--out', str(out)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    for nb in sorted((ROOT/'nbs').glob('*.ipynb')):
        name = 'index.html' if nb.stem == 'index' else re.sub(r'^\d+[a-z]?_', '', nb.stem) + '.html'
        page = out/name; assert page.exists(), f'no page for {nb.name}'
        html = page.read_text()
        src = json.loads(nb.read_text())
        exported = [re.search(r'^(?:def|class) (\w+)', ''.join(c['source']), re.M) for c in src['cells']
                    if c['cell_type'] == 'code' and ''.join(c['source']).startswith('#| export')]
        for m in [m for m in exported if m and not m.group(1).startswith('_')]:
            assert re.search(rf'<h[34][^>]*>(\w+\.)?{m.group(1)}\b', html), f'{name}: no API doc for {m.group(1)}'
        shown = [c for c in src['cells'] if c['cell_type'] == 'code' and not re.search(r'^#\|\s*(hide|include:\s*false|output:\s*false)', ''.join(c['source']), re.M)]
        n_figs = sum('image/png' in o.get('data', {}) for c in shown for o in c.get('outputs', []))
        if any('image/png' in o.get('data', {}) for c in src['cells'] for o in c.get('outputs', [])): assert n_figs, f'{name}: every figure is hidden'
        assert html.count('data:image/png') >= n_figs, f'{name}: {n_figs} figures in the notebook, fewer on the page'
