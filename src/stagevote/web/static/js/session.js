// A signed-in session held in this tab's memory only (never in localStorage or a cookie): the access
// token is refreshed with the refresh token a minute before it expires, and once more on a 401.
import { ApiError, call } from "./api.js";

export class Session {
  constructor({ onEnd } = {}) {
    this.onEnd = onEnd || (() => {});
    this.access = null;
    this.refreshToken = null;
    this.user = null;
    this.timer = null;
    this.refreshing = null;
  }

  get signedIn() {
    return Boolean(this.access);
  }

  get token() {
    return this.access;
  }

  async login(email, password) {
    this.adopt(await call("POST", "/auth/login", { body: { email, password } }));
    return this.user;
  }

  async signup(email, password) {
    this.adopt(await call("POST", "/auth/signup", { body: { email, password } }));
    return this.user;
  }

  adopt(pair) {
    this.access = pair.accessToken;
    this.refreshToken = pair.refreshToken;
    this.user = pair.user;
    clearTimeout(this.timer);
    const seconds = Math.max(10, (pair.expiresIn || 900) - 60);
    this.timer = setTimeout(() => this.refresh().catch(() => {}), seconds * 1000);
  }

  refresh() {
    if (!this.refreshing) {
      this.refreshing = call("POST", "/auth/refresh", { body: { refreshToken: this.refreshToken } })
        .then((pair) => this.adopt(pair))
        .catch((error) => {
          if (error instanceof ApiError && error.status === 401) this.end();
          throw error;
        })
        .finally(() => {
          this.refreshing = null;
        });
    }
    return this.refreshing;
  }

  async call(method, path, options = {}) {
    try {
      return await call(method, path, { ...options, token: this.access });
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401 || !this.refreshToken) throw error;
      await this.refresh();
      return call(method, path, { ...options, token: this.access });
    }
  }

  async logout() {
    const refreshToken = this.refreshToken;
    const access = this.access;
    this.end();
    if (access) await call("POST", "/auth/logout", { body: { refreshToken }, token: access }).catch(() => {});
  }

  end() {
    const was = this.signedIn;
    clearTimeout(this.timer);
    this.access = null;
    this.refreshToken = null;
    this.user = null;
    if (was) this.onEnd();
  }
}
