from django.contrib.auth.hashers import Argon2PasswordHasher


class Argon2idPasswordHasher(Argon2PasswordHasher):
    """Django's Argon2 (the argon2id variant) with the parameters OWASP recommends as a minimum
    (m=19 MiB, t=2, p=1): costly for an attacker, cheap enough that a public registration
    endpoint cannot be made to spend a CPU-second per request. Hashes record their parameters,
    so changing these later still verifies old ones."""

    time_cost = 2
    memory_cost = 19 * 1024
    parallelism = 1
