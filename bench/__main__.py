try:
    from bench.cli import command
except KeyboardInterrupt:  # Ctrl-C before bench.cli could catch it: no traceback either
    raise SystemExit(130) from None

command()
