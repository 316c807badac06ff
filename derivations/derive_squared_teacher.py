"""Mismatched targets: squared teachers (x with x**2, He2 with He2**2)."""

from _common import write

from symlora.models import SQUARED_TEACHER_PAIRS, models

if __name__ == "__main__":
    write("squared_teacher", models(SQUARED_TEACHER_PAIRS), "Squared teachers",
          "Teachers of non-zero mean: the k = 0 terms matter; a(mu) = -mu for x with x**2.")
