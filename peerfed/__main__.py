from peerfed.cli import main

raise SystemExit(main())
