# leak-sentinel targets for a project's Makefile (the W3 leak-sentinel commands).
#
#   include path/to/leak-sentinel.mk
#   SOAK_CMD = ./my-service --port 8080     # what to soak (or PID=… / PID_FILE=… to attach)
#
#   make w3-start-tagged run_name=W3-MyTest hours=6
#   make w3-quick-test                       # 1 hour, checked every minute
#   make w3-status run_name=W3-MyTest        # run_name omitted: the most recent run
#   make w3-schedule run_name=W3-Nightly cron="0 3 * * *"
#   make mem-health PID=1234
#
# Every target is a thin call of the leak-sentinel CLI; its exit code is the target's.

LEAK_SENTINEL  ?= leak-sentinel
SOAK_CMD       ?=
PID            ?=
PID_FILE       ?=
run_name       ?=
hours          ?= 6
profile        ?= standard
cron           ?= 0 3 * * *
timeout        ?= 7h
quick_duration ?= 1h
# Extra flags for run/schedule, e.g. SENTINEL_ARGS="--memory-threshold 0.2 --on-leak 'gcore -o {dir}/core {pid}'"
SENTINEL_ARGS  ?=

_ls_target = $(if $(PID),--pid $(PID),$(if $(PID_FILE),--pid-file $(PID_FILE),-- $(SOAK_CMD)))
_ls_need_target = $(if $(or $(PID),$(PID_FILE),$(strip $(SOAK_CMD))),,$(error set SOAK_CMD, PID or PID_FILE))
_ls_need_name = $(if $(run_name),,$(error set run_name=NAME))

.PHONY: w3-start-tagged w3-quick-test w3-status w3-schedule mem-health

w3-start-tagged:
	$(_ls_need_name)$(_ls_need_target)$(LEAK_SENTINEL) run --name $(run_name) --profile $(profile) --duration $(hours)h $(SENTINEL_ARGS) $(_ls_target)

w3-quick-test:
	$(_ls_need_target)$(LEAK_SENTINEL) run --name $(or $(run_name),W3-Quick-$(shell date +%Y%m%d-%H%M%S)) --profile quick --duration $(quick_duration) $(SENTINEL_ARGS) $(_ls_target)

w3-status:
	$(LEAK_SENTINEL) status $(run_name)

w3-schedule:
	$(_ls_need_name)$(_ls_need_target)$(LEAK_SENTINEL) schedule create $(run_name) --cron "$(cron)" --profile $(profile) --timeout $(timeout) $(SENTINEL_ARGS) $(_ls_target)

mem-health:
	$(LEAK_SENTINEL) health $(if $(PID),--pid $(PID),$(if $(PID_FILE),--pid $$(cat $(PID_FILE)),$(error set PID or PID_FILE)))
