# bench/bench.mk - benchmark rules beyond `make bench`, included at the end of the Makefile.
#
#   make bench-proxy   gslbd against nginx (geoip2) and HAProxy on loopback, with wrk and
#                      callgrind (bench/proxy.sh: installs what is missing, about 11 minutes),
#                      then memory per idle client connection; PHASES=idle runs only that
#                      (bench/idle_conns.py, half a minute)
#
# A benchmark, not a test: `make test` and `make check` never run it.

.PHONY: bench-proxy
bench-proxy: $(PROGRAMS) $(BUILD)/bench/mmdb_continents
	bench/proxy.sh $(BUILD)
