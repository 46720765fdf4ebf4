.PHONY: export clean test docs readme check all
export:  ## notebooks -> referpix2pix/*.py
	nbdev_export
clean:   ## strip notebook metadata (keeps outputs)
	nbdev_clean
test:    ## notebook cells (not slow/gpu) + pytest
	nbdev_test --n_workers 2
	pytest tests/ -q
docs:    ## offline docs site in _site/ (use nbdev_docs where Quarto is installed)
	python tools/build_docs.py --out _site
readme:  ## README.md from nbs/index.ipynb (nbdev_readme does this with Quarto)
	python tools/make_readme.py
check: export clean readme
	git status --porcelain
all: export clean readme test docs
