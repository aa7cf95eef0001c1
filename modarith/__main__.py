from modarith.reporting.cli import main

raise SystemExit(main())
