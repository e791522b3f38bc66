import sys

from tools.ctlint.cli import main

sys.exit(main(sys.argv[1:]))
