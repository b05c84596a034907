# Two entry points for a fresh machine (see README):
#   make run   - install into .venv and start the main job on the embedded demo
#   make test  - install into .venv and run the whole test suite
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install lint bench clean bundle bundle-check

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/patchcore-gui $(ARGS)

test: $(STAMP)
	$(BIN)/ruff check patchcore_gui tests benchmarks
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

# Desktop bundle (README "Desktop bundle"): PyInstaller comes from the `bundle` extra.
# Slow (a 5 GB folder), so CI does not build it; tests/test_packaging_recipe.py checks
# the recipe instead.
BUNDLE_STAMP := $(VENV)/.bundle-installed

$(BUNDLE_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test,bundle]'
	touch $(BUNDLE_STAMP)

bundle: $(BUNDLE_STAMP)
	rm -rf dist/patchcore-inspector dist/patchcore-inspector-*.tar.gz
	# --clean: a kept PYZ can carry modules compiled before the last edit.
	$(BIN)/pyinstaller --noconfirm --clean --log-level WARN --distpath dist --workpath build/pyinstaller \
		packaging/patchcore_inspector.spec
	$(BIN)/python packaging/pack_bundle.py

bundle-check: $(STAMP)
	bash packaging/bundle_check.sh

clean:
	rm -rf $(VENV) build dist *.egg-info
