// LibTorch (fine-tuning) and OpenBLAS run on GNU OpenMP, whose worker threads spin at every
// barrier by default. In a process that shares its cores with the inference thread pool (or
// with other processes) the spinning threads steal the cores the work needs: measured 5x
// slower training steps on 2 busy cores. libgomp reads OMP_WAIT_POLICY once, when it loads,
// so the only way to set it from inside is to re-execute the program with it set.
#pragma once

namespace lorad {

// When OMP_WAIT_POLICY is unset: sets it to PASSIVE and re-executes /proc/self/exe with the
// same arguments (does not return on success). Returns when it is already set (by the user or
// by the re-execution) or when re-execution fails. Call first thing in main(), before any
// thread starts.
void ReexecWithPassiveOpenMpWait(char** argv);

}  // namespace lorad
