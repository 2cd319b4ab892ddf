"""Security primitives below everything: password hashing (argon2) and the data
ciphers (AES-GCM data keys). No imports of the app's own packages."""
