# The two quick-start commands: `make demo` and `make test`. Both install into .venv/ first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# swagger-ui-dist pulls in @scarf/scarf, whose install script would report to scarf.sh: never
export SCARF_ANALYTICS := false
export DO_NOT_TRACK := 1

.PHONY: demo test lint web-check bench install clean web serve

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[train,server,postgres,ray,dev,fuzz]"
	touch $(STAMP)

install: $(STAMP)

# A ready demo project of generated images, served with the web app on http://127.0.0.1:8000
demo: $(STAMP)
	test -f demo/labelloop.json || $(BIN)/labelloop demo demo
	LABELLOOP_HOME=$(CURDIR)/.labelloop-demo $(BIN)/labelloop serve --project demo

serve: $(STAMP)
	$(BIN)/labelloop serve

# Rebuild the web UI (the built assets in src/labelloop/web/dist are committed; users need no Node),
# after regenerating its TypeScript types of the API (web/src/schema.d.ts) from the OpenAPI document
web: $(STAMP)
	cd src/labelloop/web && npm ci --no-audit --no-fund
	$(BIN)/python scripts/api_types.py
	cd src/labelloop/web && npm run build

test: $(STAMP) lint web-check
	eval "$$(scripts/test-services.sh)" && HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/mypy

# The web UI's types of the API are those the OpenAPI document gives, its sources type-check, pass
# the linter (biome; errors fail, warnings are shown with `npx biome lint src`) and the committed
# dist is exactly a fresh build of them
WEB := src/labelloop/web
DIST_CHECK := $(or $(TMPDIR),/tmp)/labelloop-dist-check
web-check: $(STAMP)
	@command -v npm >/dev/null || { echo "npm is needed to check the web UI: install Node.js 20 (apt install nodejs npm)"; exit 1; }
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error
	$(BIN)/python scripts/api_types.py --check
	cd $(WEB) && npx tsc --noEmit -p . && npx biome lint --diagnostic-level=error src
	cd $(WEB) && npx vite build --outDir $(DIST_CHECK) --emptyOutDir --logLevel error
	@diff -r $(WEB)/dist $(DIST_CHECK) >/dev/null || { diff -rq $(WEB)/dist $(DIST_CHECK); \
		echo "web/dist is not a fresh build of web/src: run 'make web' and commit web/dist"; exit 1; }

bench: $(STAMP)
	$(BIN)/python benchmarks/import_export.py
	$(BIN)/python benchmarks/train_speed.py
	$(BIN)/python benchmarks/api_load.py --images 20000 --annotations 200000 --seconds 20

clean:
	rm -rf $(VENV) demo .labelloop-demo
