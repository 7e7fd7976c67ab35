"""What Mattermost does to its data, shared by the HTTP routes and the Python helpers.

Each function checks the model rules, mutates the store and returns the stored
record. Permission checks belong to the callers: the routes check the session's
permissions like the real API handlers do, the helpers act as an administrator.
"""
