"""`labyrinth serve`: the app over SSH — a presenter drives, the audience follows in their own terminals."""
