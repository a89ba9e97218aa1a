PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# Pinned: an unpinned torch pulls a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	# One OpenCV wheel only: an older .venv may hold opencv-python-headless, which installs the
	# same cv2 package as the contrib wheel stseg needs (DeepFlow); pip would lay one over the
	# other. Remove the plain ones first, then restore contrib's files if removing clobbered them.
	$(PY) -m pip uninstall --quiet -y opencv-python opencv-python-headless 2>/dev/null || true
	$(PY) -m pip install --quiet -e ".[train,dev,plot]"
	$(PY) -c "import cv2.optflow" 2>/dev/null || $(PY) -m pip install --quiet --force-reinstall --no-deps opencv-contrib-python-headless
	touch $(STAMP)

demo: $(STAMP)
	$(PY) scripts/demo.py

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) scripts/bench_kernels.py

clean:
	rm -rf $(VENV) demo_out bench_out .pytest_cache .hypothesis
