from lantian.app import create_app

app = create_app()
