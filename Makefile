# Two commands do everything on a fresh Debian/Ubuntu machine:
#   make run    installs what is missing, builds, and starts the Cria app
#   make test   installs what is missing and runs every check CI runs
.PHONY: run test setup ui

run: setup ui
	cargo run --release -p cria-app

test:
	scripts/test.sh

setup:
	scripts/setup.sh

ui:
	cd ui && npm run --silent build
