"""Many concurrent claims of one epoch against one claim store: the proof each store gives, shared by the unit tests
(file) and the lab tests (S3, sftp). Importable as ansible_collections.dokku_sqlite.litestream.tests.claims_race."""
import threading

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import claim_store


def race(make_store, fields, claim_of, count=20, lost=(claim_store.LostClaim,)):
    """`count` threads, each with a store of its own, claim epoch 1 at once. Returns ({contender: the owner its
    create returned, or the exception it lost with}, [every answer of a store's create])."""
    outcomes, answers, barrier = {}, [], threading.Barrier(count)

    def contend(i):
        store = make_store()
        real_create = store.create

        def create(path, data):
            answers.append(real_create(path, data))
            return answers[-1]
        store.create = create
        barrier.wait()
        try:
            outcomes[i] = claim_store.create(store, fields, claim_of(fields, "host-%d" % i, "n%d" % i))["owner"]
        except lost as exc:
            outcomes[i] = exc
    threads = [threading.Thread(target=contend, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes, answers


def one_winner(outcomes, answers, count=20):
    """The winner's name, after checking the store said "created" once and "exists" to every other create, and every
    loser was told the winner."""
    assert sorted(answers, key=str) == [False] * (count - 1) + [True], answers
    winners = [outcome for outcome in outcomes.values() if isinstance(outcome, str)]
    assert len(outcomes) == count and len(winners) == 1, outcomes
    assert all(isinstance(outcome, claim_store.LostClaim) and "first: %s since epoch 1" % winners[0] in str(outcome)
               for outcome in outcomes.values() if not isinstance(outcome, str)), outcomes
    return winners[0]
