// webcall SDK — a small event emitter. `on` adds a listener and returns the object, so calls
// chain as in the official room API; a listener that throws is reported and does not stop the
// others.

export class Emitter {
  constructor() {
    this._listeners = new Map();
  }

  /** Adds `callback` for `event`; returns this. */
  on(event, callback) {
    if (!event) throw new TypeError("Event can't be empty");
    if (typeof callback !== 'function') throw new TypeError('Callback must be a function');
    if (!this._listeners.has(event)) this._listeners.set(event, []);
    this._listeners.get(event).push(callback);
    return this;
  }

  /** Adds `callback` for the next `event` only; returns this. */
  once(event, callback) {
    const f = (...args) => {
      this.off(event, f);
      callback(...args);
    };
    return this.on(event, f);
  }

  /** Removes `callback` for `event` (or every listener of `event` without a callback). */
  off(event, callback) {
    const list = this._listeners.get(event);
    if (!list) return this;
    if (!callback) this._listeners.delete(event);
    else this._listeners.set(event, list.filter((f) => f !== callback));
    return this;
  }

  /** Calls the listeners of `event` with `args`; returns how many there were. */
  emit(event, ...args) {
    const list = this._listeners.get(event);
    if (!list || !list.length) return 0;
    for (const f of [...list]) {
      try {
        f(...args);
      } catch (err) {
        // A bug in a page's handler must not break the SDK's state machine.
        setTimeout(() => { throw err; });
      }
    }
    return list.length;
  }
}
