"""Executors run a plan's cells and hand each finished cell's record to the driver.

Interface: `Executor(**options).run(cells, done, env, on_done, progress)` where `done` holds
the records of cells already finished (resume), and `on_done(record)` is called in the
driver process for every newly finished cell (the driver alone writes the store).
"""

from bench.registry import Registry

EXECUTORS: Registry = Registry("executor")
EXECUTORS.register("local", "bench.executors.local:LocalExecutor")
EXECUTORS.register("ray", "bench.executors.ray:RayExecutor")
