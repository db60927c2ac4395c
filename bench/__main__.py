try:
    from bench.cli import main
except KeyboardInterrupt:  # Ctrl-C before bench.cli could catch it: no traceback either
    raise SystemExit(130) from None

raise SystemExit(main())
