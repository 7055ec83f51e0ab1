from inventory_cli.cli.main import main

main()
