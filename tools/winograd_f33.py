"""F(3x3, 3x3) on the points of F(4x4, 2x2) (0, 1, -1, 2 and infinity), in exact rationals.

`lib_winograd.wgsl` scales the rows of F(4x4, 2x2)'s B^T to integers; a 1-D Winograd algorithm
y = A^T [(G g) . (B^T d)] on the same points keeps that B^T, so F(3x3, 3x3) needs only its own A^T
(the powers of the points, infinity last) and the G that matches the scaled B^T. This solves
sum_j A^T[i][j] G[j][k] B^T[j][t] = [t == i + k] (i, k < 3; t < 5: the correlation y_i = sum_k
d[i + k] g[k]) for G, checks that the system is consistent and its solution unique, checks the 2-D
algorithm against the direct correlation of random rational tiles, and prints G and A^T.

    python3 tools/winograd_f33.py
"""
from fractions import Fraction
import random

BT = [[2, -1, -2, 1, 0], [0, 2, 1, -1, 0], [0, -2, 3, -1, 0], [0, -1, 0, 1, 0], [0, 2, -1, -2, 1]]
AT = [[1, 1, 1, 1, 0], [0, 1, -1, 2, 0], [0, 1, 1, 4, 1]]
M, R, ALPHA = 3, 3, 5


def solve_g():
    # unknown G[j][k] at column j * R + k of the augmented system
    rows = []
    for i in range(M):
        for k in range(R):
            for t in range(ALPHA):
                row = [Fraction(0)] * (ALPHA * R)
                for j in range(ALPHA):
                    row[j * R + k] += Fraction(AT[i][j] * BT[j][t])
                rows.append(row + [Fraction(int(t == i + k))])
    n, rank, pivots = ALPHA * R, 0, []
    for c in range(n):
        p = next((q for q in range(rank, len(rows)) if rows[q][c] != 0), None)
        if p is None:
            continue
        rows[rank], rows[p] = rows[p], rows[rank]
        rows[rank] = [x / rows[rank][c] for x in rows[rank]]
        for q in range(len(rows)):
            if q != rank and rows[q][c] != 0:
                f = rows[q][c]
                rows[q] = [x - f * y for x, y in zip(rows[q], rows[rank])]
        pivots.append(c)
        rank += 1
    assert rank == n, f'G is not unique (rank {rank} of {n})'
    assert all(rows[q][n] == 0 for q in range(rank, len(rows))), 'no G fits these A^T and B^T'
    G = [[Fraction(0)] * R for _ in range(ALPHA)]
    for q, c in enumerate(pivots):
        G[c // R][c % R] = rows[q][n]
    return G


def matmul(a, b):
    return [[sum(a[i][k] * b[k][j] for k in range(len(b))) for j in range(len(b[0]))] for i in range(len(a))]


def transpose(a):
    return [list(r) for r in zip(*a)]


def check_2d(G, trials=20):
    rng = random.Random(3)
    for _ in range(trials):
        d = [[Fraction(rng.randint(-9, 9), rng.randint(1, 9)) for _ in range(ALPHA)] for _ in range(ALPHA)]
        g = [[Fraction(rng.randint(-9, 9), rng.randint(1, 9)) for _ in range(R)] for _ in range(R)]
        U = matmul(matmul(G, g), transpose(G))
        V = matmul(matmul(BT, d), transpose(BT))
        Y = matmul(matmul(AT, [[U[i][j] * V[i][j] for j in range(ALPHA)] for i in range(ALPHA)]), transpose(AT))
        for i in range(M):
            for j in range(M):
                want = sum(d[i + a][j + b] * g[a][b] for a in range(R) for b in range(R))
                assert Y[i][j] == want, (i, j, Y[i][j], want)


G = solve_g()
check_2d(G)
print('G =', [[str(x) for x in row] for row in G])
print('A^T =', AT)
print('exact: the 2-D algorithm equals the direct correlation on 20 random rational tiles')
