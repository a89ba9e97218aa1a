PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

# Exit 0 when a plain (non-contrib) OpenCV wheel is installed.
export PLAIN_OPENCV := import sys, importlib.metadata as m; names = {(d.metadata["Name"] or "").lower() for d in m.distributions()}; sys.exit(0 if names & {"opencv-python", "opencv-python-headless"} else 1)
# cv2 whole, with the contrib modules: what DeepFlow and DIS need.
export CV2_WORKS := import cv2; cv2.optflow.createOptFlow_DeepFlow(); cv2.DISOpticalFlow_create(0)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# Pinned: an unpinned torch pulls a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	# One OpenCV wheel only: an older .venv may hold opencv-python-headless, which installs the
	# same cv2 package as the contrib wheel stseg needs (DeepFlow); uninstalling one of two
	# wheels laid over each other breaks the other, so when a plain one is there, remove all
	# and let the install below put contrib back whole.
	$(PY) -c "$$PLAIN_OPENCV" && $(PY) -m pip uninstall --quiet -y opencv-python opencv-python-headless opencv-contrib-python opencv-contrib-python-headless || true
	$(PY) -m pip install --quiet -e ".[train,dev,plot,cluster]"
	$(PY) -c "$$CV2_WORKS" 2>/dev/null || $(PY) -m pip install --quiet --force-reinstall --no-deps opencv-contrib-python-headless
	$(PY) -c "$$CV2_WORKS"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) scripts/demo.py

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m stseg_kernels.bench

# stseg_kernels drops numba's cache itself when any kernel source changes (_cache.py); this
# removes it all the same.
clean:
	rm -rf $(VENV) demo_out bench_out .pytest_cache .hypothesis
	find kernels -name '*.nbi' -delete -o -name '*.nbc' -delete
