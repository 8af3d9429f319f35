"""``python -m core.engine FD``: the engine process, serving requests on the socket FD it inherited."""

from core.engine.main import main

raise SystemExit(main())
