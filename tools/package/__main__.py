import sys

from tools.package.cli import main

sys.exit(main(sys.argv[1:]))
