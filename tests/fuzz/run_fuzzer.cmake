# Runs one libFuzzer binary for SECONDS over a scratch copy of its committed
# corpus (the fuzzer adds what it finds to the copy, never to the source
# tree). A crash, leak, timeout or broken invariant fails the test; the input
# is left in WORK/ as crash-*, leak-* or timeout-*.
#   cmake -DFUZZER=... -DCORPUS=... -DDICT=... -DWORK=... -DSECONDS=... -P run_fuzzer.cmake
foreach(v FUZZER CORPUS WORK SECONDS)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "run_fuzzer.cmake: ${v} is not set")
  endif()
endforeach()
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/corpus)
file(GLOB seeds ${CORPUS}/*)
if(NOT seeds)
  message(FATAL_ERROR "no seed corpus in ${CORPUS}")
endif()
file(COPY ${seeds} DESTINATION ${WORK}/corpus)
set(args -max_total_time=${SECONDS} -timeout=5 -rss_limit_mb=2048 -max_len=8192
  -print_final_stats=1 -artifact_prefix=${WORK}/)
if(DEFINED DICT AND EXISTS ${DICT})
  list(APPEND args -dict=${DICT})
endif()
execute_process(COMMAND ${FUZZER} ${args} ${WORK}/corpus
  WORKING_DIRECTORY ${WORK} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${FUZZER} failed (${rc}); the input is in ${WORK}")
endif()
