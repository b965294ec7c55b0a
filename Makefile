# The two set-up commands of the README: `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.gvfx-installed
# Blender's bpy pins numpy<2: it gets its own environment, used only to test the Blender add-on.
BLENDER_VENV ?= .venv-blender
BLENDER_STAMP := $(BLENDER_VENV)/.bpy-installed
BPY_VERSION ?= 5.0.1
# ...and the 4.x LTS line, whose compositor is the older scene node tree
BLENDER4_VENV ?= .venv-blender4
BLENDER4_STAMP := $(BLENDER4_VENV)/.bpy-installed
BPY4_VERSION ?= 4.5.15

.PHONY: demo test venv bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

$(BLENDER_STAMP):
	$(PY) -m venv $(BLENDER_VENV)
	$(BLENDER_VENV)/bin/pip install -q --upgrade pip
	$(BLENDER_VENV)/bin/pip install -q bpy==$(BPY_VERSION)
	touch $(BLENDER_STAMP)

$(BLENDER4_STAMP):
	$(PY) -m venv $(BLENDER4_VENV)
	$(BLENDER4_VENV)/bin/pip install -q --upgrade pip
	$(BLENDER4_VENV)/bin/pip install -q bpy==$(BPY4_VERSION)
	touch $(BLENDER4_STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/gvfx demo $(ARGS)

test: $(STAMP) $(BLENDER_STAMP) $(BLENDER4_STAMP)
	GVFX_BLENDER_PYTHON=$(abspath $(BLENDER_VENV))/bin/python \
	GVFX_BLENDER4_PYTHON=$(abspath $(BLENDER4_VENV))/bin/python \
	GVFX_EXECUTABLE=$(abspath $(BIN))/gvfx \
	QT_QPA_PLATFORM=offscreen RAY_AUTH_MODE=disabled \
	$(BIN)/python -m pytest -q $(ARGS)

bench: $(STAMP)
	$(BIN)/pip install -q -c constraints.txt -e '.[bench]'
	for b in benchmarks/*_bench.py; do $(BIN)/python $$b; done

clean:
	rm -rf $(VENV) $(BLENDER_VENV) $(BLENDER4_VENV) gvfx-demo
