try:
    from bench.cli import main
except KeyboardInterrupt:  # Ctrl-C before bench.cli could catch it: no traceback either
    raise SystemExit(130) from None

code = main()
# Under `python -m`, CPython (3.11 at least) ends the process with SIGINT at exit, whatever
# the exit code, if a KeyboardInterrupt ever ended a string exec or eval: even one bench
# caught and reported (dataclasses, pydantic and namedtuple exec strings, and an interrupt can
# land in one). A string exec that ends cleanly resets that flag: `bench run` interrupted
# exits 130, as it says.
exec("")
raise SystemExit(code)
